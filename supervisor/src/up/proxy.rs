//! `/api/control/*`, `/api/memory/*`, `/api/swapper/*` and `/api/gateway/*` on the admin port,
//! passed to the services unchanged: the web UI uses the services' public APIs, with the same
//! credentials a script would (a bearer token, or the admin session cookie and its CSRF token,
//! which each service checks itself). Nothing is authorised here, so nothing can be reached
//! through the proxy that the service would refuse. Bodies stream both ways (the chat's SSE).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daarion_config::{Config, ServiceName};
use daarion_http::ErrorResponse;

/// Request headers a service may need; everything else (hop-by-hop, `Host`) stays here.
const FORWARDED: [HeaderName; 9] = [
    header::ACCEPT,
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::COOKIE,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-csrf-token"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("x-daarion-acting-for"),
    HeaderName::from_static("last-event-id"),
];

/// Response headers that describe this hop, not the content.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

#[derive(Clone)]
pub struct Proxy {
    http: reqwest::Client,
    control: SocketAddr,
    memory: SocketAddr,
    swapper: SocketAddr,
    gateway: SocketAddr,
}

impl Proxy {
    pub fn new(config: &Config) -> Proxy {
        Proxy {
            // No overall timeout: a chat answer streams for as long as the model talks.
            http: daarion_client::http_client(daarion_client::Timeouts::streaming()),
            control: config.service(ServiceName::ControlPlane).dial(),
            memory: config.service(ServiceName::Memory).dial(),
            swapper: config.service(ServiceName::Swapper).dial(),
            gateway: config.service(ServiceName::Gateway).dial(),
        }
    }

    fn target(&self, service: &str) -> Option<(SocketAddr, &'static str)> {
        Some(match service {
            "control" => (self.control, "the control plane"),
            "memory" => (self.memory, "the memory service"),
            "swapper" => (self.swapper, "the swapper"),
            "gateway" => (self.gateway, "the gateway"),
            _ => return None,
        })
    }
}

/// The proxy's routes; each service authorises its own requests.
pub fn routes(proxy: Proxy) -> axum::Router {
    let mut router = axum::Router::new();
    for service in ["control", "memory", "swapper", "gateway"] {
        router = router.route(
            &format!("/api/{service}/{{*rest}}"),
            axum::routing::any(forward),
        );
    }
    router.with_state(proxy)
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let path = request.uri().path().trim_start_matches("/api/");
    let (service, rest) = path.split_once('/').unwrap_or((path, ""));
    let (service, rest) = (service.to_owned(), rest.to_owned());
    let Some((addr, what)) = proxy.target(&service) else {
        return ErrorResponse::not_found(format!(
            "no service `{service}` behind /api: control, memory, swapper or gateway"
        ))
        .into_response();
    };
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!("http://{addr}/{rest}{query}");
    let method = match reqwest::Method::from_bytes(request.method().as_str().as_bytes()) {
        Ok(method) => method,
        Err(_) => return ErrorResponse::bad_request("unsupported method").into_response(),
    };
    let mut upstream = proxy.http.request(method, url);
    for name in &FORWARDED {
        for value in request.headers().get_all(name) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let body = reqwest::Body::wrap_stream(request.into_body().into_data_stream());
    let answer = match upstream.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(service = %service, error = %e, "proxy: upstream unreachable");
            return ErrorResponse::new(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                format!("{what} is not reachable; see the Services page"),
            )
            .into_response();
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.iter().any(|h| h.as_str() == name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| ErrorResponse::internal().into_response())
}
