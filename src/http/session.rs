//! The session cookie and the extractor that turns it into an account.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::accounts::model::Account;
use crate::platform::domain::TokenHash;
use crate::platform::error::AppError;
use crate::state::AppState;

pub const COOKIE_NAME: &str = "masthead_session";

/// The logged-in account of a request; a handler that takes it answers 401
/// to anyone else.
#[derive(Debug, Clone)]
pub struct CurrentAccount {
    pub account: Account,
    pub session: TokenHash,
}

impl FromRequest for CurrentAccount {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let token = req.cookie(COOKIE_NAME).map(|c| c.value().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
            let not_logged_in = AppError::Unauthorized {
                detail: "log in to continue",
            };
            let token = token.ok_or(not_logged_in)?;
            match state.accounts.authenticate(&token).await? {
                Some((account, session)) => Ok(Self { account, session }),
                None => Err(AppError::Unauthorized {
                    detail: "your session has ended; log in again",
                }),
            }
        })
    }
}

/// The session cookie's token, if the request carries a non-empty one; it
/// is not looked up.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE_NAME)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn session_cookie(token: &str, max_age: chrono::Duration, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::seconds(max_age.num_seconds()))
        .finish()
}

pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie("", chrono::Duration::zero(), secure);
    cookie.make_removal();
    cookie
}
