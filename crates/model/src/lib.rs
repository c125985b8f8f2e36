//! Domain types shared by every Nimbus crate: who we are ([`Identity`]), how functions are
//! named and addressed ([`names`]), what a function is ([`function`]) and Lambda's numeric
//! limits ([`limits`]). This crate does no I/O and knows nothing of HTTP or AWS JSON shapes.

pub mod events;
pub mod function;
pub mod http;
pub mod limits;
pub mod names;
pub mod pricing;
pub mod time_fmt;

pub use events::{EventInvokeConfig, InputTransformerRecord, RuleRecord, TargetRecord};
pub use function::{
    AliasRecord, AttachedLayer, CodeInfo, FunctionConfig, FunctionRecord, LayerVersionRecord,
    LoggingConfig, PolicyStatement, ProvisionedConfig,
};
pub use http::{
    CorsConfig, FunctionUrlConfig, HttpApiRecord, IntegrationRecord, RouteRecord, StageRecord,
};
pub use names::{FunctionRef, Identity, NameError};
