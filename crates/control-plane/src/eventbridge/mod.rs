//! EventBridge on the default bus: rules with event patterns or schedules, Lambda targets,
//! and the routing of events to them. Rules live in memory (compiled), written through to
//! the [`RuleStore`]; matched events become asynchronous invocations of the targets, so
//! they share the durable queue's retries and destinations.

pub(crate) mod api;
pub mod scheduler;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use nimbus_events::{InputTransformer, Pattern, Schedule, TransformContext};
use nimbus_model::time_fmt::now_millis;
use nimbus_model::{Identity, RuleRecord, TargetRecord};
use nimbus_store::{NewEvent, RuleStore};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::async_invoke::record::Destination;

/// The only bus Nimbus has (custom buses are not implemented).
pub const DEFAULT_BUS: &str = "default";

/// A rule ready to match: its record with the pattern, schedule and transformers parsed.
pub struct CompiledRule {
    pub record: RuleRecord,
    pattern: Option<Pattern>,
    pub schedule: Option<Schedule>,
    transformers: Vec<Option<InputTransformer>>,
}

impl CompiledRule {
    /// Parses what the record holds. Records are validated before they are stored, so a
    /// failure here means the stored rule is damaged.
    pub fn compile(record: RuleRecord) -> Result<Self, String> {
        let pattern = record
            .event_pattern
            .as_deref()
            .map(Pattern::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        let schedule = record
            .schedule_expression
            .as_deref()
            .map(Schedule::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        let transformers = record
            .targets
            .iter()
            .map(|t| {
                t.input_transformer
                    .as_ref()
                    .map(|x| {
                        InputTransformer::new(x.input_paths_map.clone(), x.input_template.clone())
                    })
                    .transpose()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledRule {
            record,
            pattern,
            schedule,
            transformers,
        })
    }
}

pub struct Bus {
    identity: Identity,
    store: Arc<dyn RuleStore>,
    rules: RwLock<BTreeMap<String, Arc<CompiledRule>>>,
    /// Serialises rule changes (reads never wait for it).
    write: tokio::sync::Mutex<()>,
    /// Tells the scheduler that rules changed.
    pub(crate) changed: Notify,
    /// The scheduler's next fire time per rule, for `nimbus schedules`.
    pub(crate) next_fires: RwLock<BTreeMap<String, i64>>,
}

impl Bus {
    pub fn load(
        identity: Identity,
        store: Arc<dyn RuleStore>,
    ) -> Result<Self, nimbus_store::StoreError> {
        let mut rules = BTreeMap::new();
        for r in store.load_rules()? {
            let key = r.key();
            match CompiledRule::compile(r) {
                Ok(c) => {
                    rules.insert(key, Arc::new(c));
                }
                Err(e) => {
                    tracing::warn!(rule = %key, error = %e, "stored rule no longer parses; ignored")
                }
            }
        }
        Ok(Bus {
            identity,
            store,
            rules: RwLock::new(rules),
            write: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
            next_fires: RwLock::new(BTreeMap::new()),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn rule_arn(&self, bus: &str, name: &str) -> String {
        let Identity { region, account_id } = &self.identity;
        if bus == DEFAULT_BUS {
            format!("arn:aws:events:{region}:{account_id}:rule/{name}")
        } else {
            format!("arn:aws:events:{region}:{account_id}:rule/{bus}/{name}")
        }
    }

    pub fn bus_arn(&self, bus: &str) -> String {
        let Identity { region, account_id } = &self.identity;
        format!("arn:aws:events:{region}:{account_id}:event-bus/{bus}")
    }

    /// Every rule, in key order.
    pub fn rules(&self) -> Vec<Arc<CompiledRule>> {
        self.read().values().cloned().collect()
    }

    /// Enabled rules with a schedule, for the scheduler.
    pub fn scheduled(&self) -> Vec<Arc<CompiledRule>> {
        self.read()
            .values()
            .filter(|r| r.record.enabled() && r.schedule.is_some())
            .cloned()
            .collect()
    }

    pub fn rule(&self, bus: &str, name: &str) -> Option<Arc<CompiledRule>> {
        self.read().get(&format!("{bus}/{name}")).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<CompiledRule>>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to the rule `bus/name` (None if absent) and stores the result (None
    /// deletes it). The change runs under the write lock, so read-modify-write is safe.
    pub(crate) async fn update<T>(
        &self,
        bus: &str,
        name: &str,
        change: impl FnOnce(Option<&RuleRecord>) -> Result<(Option<RuleRecord>, T), crate::ApiError>,
    ) -> Result<T, crate::ApiError> {
        let _w = self.write.lock().await;
        let key = format!("{bus}/{name}");
        let current = self.read().get(&key).cloned();
        let (next, out) = change(current.as_ref().map(|c| &c.record))?;
        match next {
            Some(record) => {
                let compiled =
                    CompiledRule::compile(record.clone()).map_err(crate::ApiError::validation)?;
                self.store.put_rule(&record)?;
                self.rules
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, Arc::new(compiled));
            }
            None => {
                if current.is_some() {
                    self.store.delete_rule(bus, name)?;
                    self.rules
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
            }
        }
        self.changed.notify_one();
        Ok(out)
    }

    /// An event in EventBridge's envelope, stamped now.
    pub fn envelope(
        &self,
        source: &str,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) -> Value {
        let time = time::OffsetDateTime::now_utc();
        self.envelope_at(source, detail_type, resources, detail, time)
    }

    pub fn envelope_at(
        &self,
        source: &str,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
        time: time::OffsetDateTime,
    ) -> Value {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": detail_type,
            "source": source,
            "account": self.identity.account_id,
            "time": nimbus_model::time_fmt::iso_seconds(time),
            "region": self.identity.region,
            "resources": resources,
            "detail": detail,
        })
    }

    /// The invocations an event put on `bus` leads to: one per target of every enabled
    /// rule whose pattern matches.
    pub fn route(&self, bus: &str, event: &Value) -> Vec<NewEvent> {
        let rules = self.read();
        let mut out = Vec::new();
        for rule in rules.values() {
            let r = &rule.record;
            if r.bus != bus || !r.enabled() {
                continue;
            }
            if rule.pattern.as_ref().is_some_and(|p| p.matches(event)) {
                out.extend(self.deliveries(rule, event));
            }
        }
        out
    }

    /// One invocation per target of `rule`, with each target's input.
    pub fn deliveries(&self, rule: &CompiledRule, event: &Value) -> Vec<NewEvent> {
        let now = now_millis();
        let rule_arn = self.rule_arn(&rule.record.bus, &rule.record.name);
        let mut out = Vec::new();
        for (target, transformer) in rule.record.targets.iter().zip(&rule.transformers) {
            let input = match target_input(
                target,
                transformer.as_ref(),
                event,
                &rule_arn,
                &rule.record.name,
            ) {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(rule = %rule_arn, target = %target.id, error = %e, "target input could not be built; event not delivered to it");
                    continue;
                }
            };
            let Ok(Destination::Function { name, qualifier }) =
                Destination::parse(&target.arn, &self.identity)
            else {
                continue;
            };
            out.push(NewEvent {
                function: name,
                qualifier,
                request_id: uuid::Uuid::new_v4().to_string(),
                payload: input.into_bytes(),
                client_context: None,
                enqueued_ms: now,
                due_ms: now,
            });
        }
        out
    }
}

/// What a target receives: the constant `Input`, the `InputPath` selection, the
/// `InputTransformer` rendering, or else the whole event.
fn target_input(
    target: &TargetRecord,
    transformer: Option<&InputTransformer>,
    event: &Value,
    rule_arn: &str,
    rule_name: &str,
) -> Result<String, String> {
    if let Some(input) = &target.input {
        return Ok(input.clone());
    }
    if let Some(path) = &target.input_path {
        let v = nimbus_events::select_path(event, path).map_err(|e| e.to_string())?;
        return Ok(v.unwrap_or(Value::Null).to_string());
    }
    if let Some(t) = transformer {
        let ingestion = nimbus_model::time_fmt::iso_millis(time::OffsetDateTime::now_utc());
        return t
            .render(
                event,
                &TransformContext {
                    rule_arn,
                    rule_name,
                    ingestion_time: &ingestion,
                },
            )
            .map_err(|e| e.to_string());
    }
    Ok(event.to_string())
}
