//! The pure logic of Lambda's HTTP triggers — Function URLs and API Gateway HTTP APIs — free of
//! I/O so it can be tested exhaustively and shared by the control plane (validating `CreateRoute`
//! and CORS settings) and the HTTP front door (turning requests into events and function output
//! into responses).
//!
//! - [`event`]: the event a function receives — payload format 2.0 (Function URLs, HTTP APIs)
//!   and 1.0 (HTTP APIs only), and which request bodies travel base64-encoded.
//! - [`response`]: what the front end makes of the function's output — 2.0's structured answer
//!   or its "shortcut" for any other JSON, and 1.0's proxy response.
//! - [`cors`]: the preflight answer the front end gives without invoking the function, and the
//!   CORS headers it adds to actual responses.
//! - [`route`]: HTTP API route keys (`$default`, `GET /pets/{id}`, `ANY /{proxy+}`), validated as
//!   `CreateRoute` does, and the route a request selects.
//!
//! The semantics follow the AWS documentation and, where it is silent, behaviour recorded against
//! AWS by others (LocalStack's AWS-validated snapshots, AWS' own Lambda test tool, captured
//! events); each module documents the choices made where neither says anything.
//!
//! ```
//! use nimbus_http_events::{event_v2, response_v2, select_route, HttpRequest, RequestContext, RouteKey};
//!
//! let routes = [RouteKey::parse("GET /pets/{id}")?, RouteKey::parse("$default")?];
//! let (index, params) = select_route(&routes, "GET", "/pets/a%20b").expect("a route matches");
//! assert_eq!((index, params["id"].as_str()), (0, "a b"));
//!
//! let headers = http::HeaderMap::new();
//! let request = HttpRequest {
//!     method: "GET", raw_path: "/pets/a%20b", raw_query: "", headers: &headers, body: b"",
//!     source_ip: "203.0.113.7", protocol: "HTTP/1.1", time_ms: 0, request_id: "r-1",
//! };
//! let ctx = RequestContext {
//!     route_key: routes[index].as_str().into(),
//!     path_parameters: Some(params),
//!     ..RequestContext::default()
//! };
//! let event = event_v2(&request, &ctx);
//! assert_eq!(event["pathParameters"]["id"], "a b");
//! assert_eq!(event["requestContext"]["time"], "01/Jan/1970:00:00:00 +0000");
//!
//! let response = response_v2(br#"{"statusCode": 201, "body": "made", "cookies": ["a=1"]}"#)?;
//! assert_eq!(response.status, 201);
//! assert_eq!(response.header("set-cookie"), Some("a=1"));
//! assert_eq!(response.body, b"made");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cors;
pub mod event;
pub mod response;
pub mod route;

mod percent;

pub use cors::{apply_cors, preflight, Cors};
pub use event::{event_v1, event_v2, is_binary_content_type, HttpRequest, RequestContext};
pub use response::{response_v1, response_v2, HttpResponse, ResponseError};
pub use route::{select_route, RouteKey, RouteKeyError};
