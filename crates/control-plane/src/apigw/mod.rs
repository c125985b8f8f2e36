//! API Gateway HTTP APIs: the `apigatewayv2` control API ([`api`]) and the registry the
//! HTTP front door ([`crate::http_trigger`]) reads. APIs live in memory with their route
//! keys parsed, written through to the [`ApiStore`].

pub(crate) mod api;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use nimbus_http_events::RouteKey;
use nimbus_model::HttpApiRecord;
use nimbus_store::{ApiStore, StoreError};

/// An API ready to serve: its record and its routes' keys, parsed, in the record's order.
pub struct CompiledApi {
    pub record: HttpApiRecord,
    /// `(route id, key)`.
    pub routes: Vec<(String, RouteKey)>,
}

impl CompiledApi {
    fn compile(record: HttpApiRecord) -> Self {
        let routes = record
            .routes
            .values()
            .filter_map(|r| Some((r.route_id.clone(), RouteKey::parse(&r.route_key).ok()?)))
            .collect();
        CompiledApi { record, routes }
    }
}

pub struct Registry {
    store: Arc<dyn ApiStore>,
    apis: RwLock<BTreeMap<String, Arc<CompiledApi>>>,
    write: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn load(store: Arc<dyn ApiStore>) -> Result<Self, StoreError> {
        let apis = store
            .load_apis()?
            .into_iter()
            .map(|a| (a.api_id.clone(), Arc::new(CompiledApi::compile(a))))
            .collect();
        Ok(Registry {
            store,
            apis: RwLock::new(apis),
            write: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, api_id: &str) -> Option<Arc<CompiledApi>> {
        self.apis
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(api_id)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<CompiledApi>> {
        self.apis
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Read-modify-write of one API under the write lock; `None` from `change` deletes it.
    pub(crate) async fn update<T>(
        &self,
        api_id: &str,
        change: impl FnOnce(
            Option<&HttpApiRecord>,
        ) -> Result<(Option<HttpApiRecord>, T), crate::ApiError>,
    ) -> Result<T, crate::ApiError> {
        let _w = self.write.lock().await;
        let current = self.get(api_id);
        let (next, out) = change(current.as_ref().map(|c| &c.record))?;
        match next {
            Some(record) => {
                self.store.put_api(&record)?;
                self.apis
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(api_id.to_string(), Arc::new(CompiledApi::compile(record)));
            }
            None => {
                self.store.delete_api(api_id)?;
                self.apis
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(api_id);
            }
        }
        Ok(out)
    }
}
