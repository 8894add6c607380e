//! The memcached text protocol without I/O: requests to bytes, bytes to responses.
//!
//! Nothing here touches a socket or a runtime, so every part is tested with byte fixtures,
//! including responses split at every byte boundary.

pub mod decode;
#[cfg(feature = "tls")]
pub(crate) mod framing;
pub mod lineup;
pub mod parse;
pub mod request;
pub mod response;
