//! The HTTP conventions every DAARION service shares: one JSON error shape with a stable code,
//! trace propagation and request metrics, a request timeout, a body size limit, the
//! observability routes, and a server loop that drains on shutdown.

mod error;
mod metrics;
mod middleware;
mod serve;

pub use error::{ErrorBody, ErrorResponse};
pub use middleware::{REQUEST_ID, json_errors, trace_requests};
pub use serve::{ServeError, build_app, serve, serve_app};

/// The address to dial for a listen address: a service listening on 0.0.0.0 or :: is reached
/// on loopback.
pub fn dial_addr(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    if listen.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unspecified_listen_is_dialled_on_loopback() {
        assert_eq!(
            super::dial_addr("0.0.0.0:9300".parse().unwrap()).to_string(),
            "127.0.0.1:9300"
        );
        assert_eq!(
            super::dial_addr("10.1.2.3:9300".parse().unwrap()).to_string(),
            "10.1.2.3:9300"
        );
    }
}
