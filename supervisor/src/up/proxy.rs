//! `/api/control/*`, `/api/memory/*`, `/api/swapper/*`, `/api/gateway/*`, `/api/ingest/*` and
//! `/api/crews/*` on the admin port, passed to the services unchanged: the web UI uses the
//! services' public APIs, with the same credentials a script would (a bearer token, or the admin
//! session cookie and its CSRF token, which each service checks itself). Nothing is authorised
//! here, so nothing can be reached through the proxy that the service would refuse. Bodies
//! stream both ways (the chat's SSE, a crew run's events, and uploads to ingest, which are never
//! held in memory here).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daarion_config::{Config, HttpConfig, ServiceName};
use daarion_http::ErrorResponse;

/// Request headers a service may need; everything else (hop-by-hop, `Host`) stays here.
const FORWARDED: [HeaderName; 9] = [
    header::ACCEPT,
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::COOKIE,
    header::IF_NONE_MATCH,
    HeaderName::from_static("x-csrf-token"),
    HeaderName::from_static("x-daarion-acting-for"),
    HeaderName::from_static("last-event-id"),
    // A raw-body upload's file name (ingest).
    HeaderName::from_static("x-daarion-file-name"),
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
    ingest: SocketAddr,
    crews: SocketAddr,
}

/// The services behind `/api/{name}/…`, by that name.
const SERVICES: [&str; 6] = ["control", "memory", "swapper", "gateway", "ingest", "crews"];

/// Room for a multipart upload's boundaries and its other fields around the file itself.
const MULTIPART_SLACK: usize = 1024 * 1024;

/// The admin port's HTTP settings: the shared ones, with the body limit raised so that a file as
/// large as ingest accepts gets through to ingest, which enforces its own limit (and says so in
/// words). The proxy streams bodies, so a large limit here holds nothing in memory, and the
/// supervisor's own routes take no bodies worth limiting.
pub fn admin_http(config: &Config) -> HttpConfig {
    let upload = usize::try_from(config.ingest.max_bytes).unwrap_or(usize::MAX);
    let mut http = config.http.clone();
    http.body_limit_bytes = http
        .body_limit_bytes
        .max(upload.saturating_add(MULTIPART_SLACK));
    http
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
            ingest: config.service(ServiceName::Ingest).dial(),
            crews: config.service(ServiceName::Crews).dial(),
        }
    }

    fn target(&self, service: &str) -> Option<(SocketAddr, &'static str)> {
        Some(match service {
            "control" => (self.control, "the control plane"),
            "memory" => (self.memory, "the memory service"),
            "swapper" => (self.swapper, "the swapper"),
            "gateway" => (self.gateway, "the gateway"),
            "ingest" => (self.ingest, "the ingest service"),
            "crews" => (self.crews, "the crews service"),
            _ => return None,
        })
    }
}

/// The proxy's routes; each service authorises its own requests.
pub fn routes(proxy: Proxy) -> axum::Router {
    let mut router = axum::Router::new();
    for service in SERVICES {
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
            "no service `{service}` behind /api: {}",
            SERVICES.join(", ")
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
    // This hop's span (which continued the browser's `traceparent`, if it sent one) is the
    // service's parent, so the trace the UI is given back holds the whole request.
    upstream = upstream.header(
        "traceparent",
        daarion_telemetry::TraceContext::current_or_new().to_header(),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults, with each service on its own port (`port + index` in [`SERVICES`] order).
    fn config(port: u16) -> Config {
        let mut config = Config::defaults();
        let at = |i: u16| SocketAddr::from(([127, 0, 0, 1], port + i));
        config.control_plane.listen = at(0);
        config.memory.listen = at(1);
        config.swapper.listen = at(2);
        config.gateway.listen = at(3);
        config.ingest.listen = at(4);
        config.crews.listen = at(5);
        config
    }

    #[test]
    fn every_prefix_reaches_its_own_service() {
        let proxy = Proxy::new(&config(20_000));
        for (i, service) in SERVICES.iter().enumerate() {
            let (addr, _) = proxy.target(service).expect(service);
            assert_eq!(addr.port(), 20_000 + i as u16, "/api/{service}");
        }
        assert!(proxy.target("parser").is_none());
    }

    /// A fake ingest that counts the bytes it was sent, as they stream in.
    async fn counting_upstream() -> SocketAddr {
        async fn count(request: Request) -> String {
            use futures::StreamExt;
            let mut body = request.into_body().into_data_stream();
            let mut total = 0;
            while let Some(Ok(chunk)) = body.next().await {
                total += chunk.len();
            }
            total.to_string()
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/v1/attachments", axum::routing::post(count));
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// The admin port as `daarion up` assembles it (the proxy under the shared layers).
    async fn admin_port(config: &Config, http: &HttpConfig) -> SocketAddr {
        let app = daarion_http::build_app(
            "supervisor",
            routes(Proxy::new(config)),
            daarion_telemetry::Readiness::new(),
            http,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn an_upload_as_large_as_ingest_accepts_gets_through_the_admin_port() {
        let mut config = config(1);
        config.ingest.listen = counting_upstream().await;
        // Above the shared 25 MiB limit, below ingest's 50 MiB.
        let size = 30 * 1024 * 1024;
        let body = vec![b'x'; size];
        for (http, expected) in [
            // The shared limit alone (before this fix) refuses it before ingest can see it.
            (config.http.clone(), 413),
            (admin_http(&config), 200),
        ] {
            let admin = admin_port(&config, &http).await;
            let answer = reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(format!("http://{admin}/api/ingest/v1/attachments"))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                answer.status().as_u16(),
                expected,
                "limit {}",
                http.body_limit_bytes
            );
            if expected == 200 {
                assert_eq!(answer.text().await.unwrap(), size.to_string());
            }
        }
    }

    #[test]
    fn the_admin_port_never_limits_below_the_shared_limit() {
        let mut config = Config::defaults();
        config.ingest.max_bytes = 1024;
        assert_eq!(
            admin_http(&config).body_limit_bytes,
            config.http.body_limit_bytes
        );
    }
}
