//! The request span: what a request logs never carries the tokens of
//! emailed links.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::http::extract::client_ip;

/// What stands in a log line for a token.
const REDACTED: &str = "[redacted]";

/// The request span of every request, as tracing-actix-web's default one
/// but with the target redacted: a link's token (`?token=…`, a `{token}`
/// path segment) is a password for as long as it lives, and logs are read by
/// more people, and kept longer, than the token tables. The client address
/// is the one the limits count: the peer's, or behind one of
/// `server.trusted_proxies` the hop it vouches for, so that a forwarded
/// header from anyone else is never logged as the client.
pub struct RedactingRootSpan;

impl RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern();
        let target = redacted_target(request.path(), route.as_deref(), request.query_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = route.as_deref().unwrap_or("default"),
            http.target = %target,
            http.client_ip = %client_ip(request.request()).map(|ip| ip.to_string()).unwrap_or_default(),
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The path and query with every `{token}` segment of the matched route and
/// every `token` parameter's value replaced.
fn redacted_target(path: &str, route: Option<&str>, query: &str) -> String {
    let path = match route.filter(|r| r.contains("{token}")) {
        Some(route) => {
            let segments: Vec<&str> = path.split('/').collect();
            let pattern: Vec<&str> = route.split('/').collect();
            if segments.len() == pattern.len() {
                segments
                    .iter()
                    .zip(&pattern)
                    .map(|(segment, part)| {
                        if *part == "{token}" {
                            REDACTED
                        } else {
                            segment
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            } else {
                // A pattern that does not line up with the path: the
                // pattern itself says enough.
                route.to_owned()
            }
        }
        None => path.to_owned(),
    };
    if query.is_empty() {
        return path;
    }
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("token") => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex, PoisonError};

    use actix_web::{test, web, App, HttpResponse};
    use tracing_actix_web::TracingLogger;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn no_log_line_of_a_request_carries_its_token() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = test::init_service(
            App::new()
                .route(
                    "/unsubscribe/{token}",
                    web::get().to(|| async {
                        tracing::info!("handled");
                        HttpResponse::Ok().finish()
                    }),
                )
                .route(
                    "/password-reset",
                    web::get().to(|| async {
                        tracing::info!("handled");
                        HttpResponse::Ok().finish()
                    }),
                )
                .wrap(TracingLogger::<RedactingRootSpan>::new()),
        )
        .await;
        let secret = "5ec2e7".repeat(10);
        for uri in [
            format!("/unsubscribe/{secret}"),
            format!("/password-reset?lang=en&token={secret}"),
        ] {
            let request = test::TestRequest::get().uri(&uri).to_request();
            let response = test::call_service(&app, request).await;
            assert!(response.status().is_success());
        }

        let logs =
            String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned();
        assert_eq!(logs.matches("handled").count(), 2, "{logs}");
        assert!(!logs.contains(&secret), "{logs}");
        assert!(logs.contains("/unsubscribe/[redacted]"), "{logs}");
        assert!(
            logs.contains("/password-reset?lang=en&token=[redacted]"),
            "{logs}"
        );
    }
}
