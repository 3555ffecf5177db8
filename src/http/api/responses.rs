//! The problem+json responses the API's operations share, named in each
//! handler's annotations and listed once in the description's components.

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, RefOr};
use utoipa::ToResponse;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            )))),
        )
        .into()
}

/// Declares a reusable problem+json response named after its type.
macro_rules! problem_response {
    ($($name:ident => $description:literal),+ $(,)?) => {$(
        pub struct $name;

        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                (stringify!($name), problem($description))
            }
        }
    )+};
}

problem_response! {
    Invalid => "A field is invalid: `errors` names each one with its reason.",
    Unauthorized => "Not logged in, or the session has ended.",
    Forbidden => "Logged in, but the role or the account's state does not allow this.",
    NotFound => "Nothing is at this id.",
    Conflict => "The request cannot be carried out in the resource's present state; \
        `reason` says why.",
    RateLimited => "Too many attempts: `Retry-After` says when to try again.",
    MalformedBody => "The body is not JSON.",
    UnsupportedMediaType => "The body is not `application/json`.",
    PayloadTooLarge => "The body is larger than `server.body_limit_bytes`.",
    Unavailable => "The database is unreachable, or password hashing is at capacity \
        (`Retry-After` then says when to retry).",
}
