//! This isolate's settings: parsed from the Workers vars and secrets on the first event it
//! serves, then kept. Vars do not change within an isolate (a deployment, or `wrangler
//! dev` reloading, starts new isolates), although workers-rs hands an `Env` to every event.
//! A misconfiguration is logged once and answered on every request with a 500 that names
//! the var.

use crate::auth::Auth;
use crate::settings::{Settings, SettingsError};
use std::cell::OnceCell;
use std::rc::Rc;
use worker::{Env, Response};

/// The settings and what is built from them once per isolate.
pub struct Configured {
    pub settings: Settings,
    /// Access control; `None` when the registry runs open.
    pub auth: Option<Auth>,
}

thread_local! {
    static CONFIGURED: OnceCell<Result<Rc<Configured>, SettingsError>> = const { OnceCell::new() };
}

/// This isolate's settings, parsed on its first call.
pub fn configured(env: &Env) -> Result<Rc<Configured>, SettingsError> {
    CONFIGURED.with(|cell| cell.get_or_init(|| parse(env)).clone())
}

/// The answer to every request while the settings cannot be used.
pub fn misconfigured(error: &SettingsError) -> worker::Result<Response> {
    Response::error(format!("edge-registry is misconfigured: {error}"), 500)
}

/// A var, else a secret, of that name.
fn lookup(env: &Env, name: &str) -> Option<String> {
    env.var(name).map(|v| v.to_string()).or_else(|_| env.secret(name).map(|s| s.to_string())).ok()
}

fn parse(env: &Env) -> Result<Rc<Configured>, SettingsError> {
    match Settings::from_lookup(&|name| lookup(env, name)) {
        Ok(settings) => {
            if settings.access.is_none() {
                worker::console_warn!(
                    "edge-registry is running OPEN: anyone who can reach it may push, pull and delete. \
                     Set AUTH_USERS / AUTH_ANONYMOUS and AUTH_TOKEN_SECRET (see README, Access control)."
                );
            }
            let auth = settings.access.clone().map(Auth::new);
            Ok(Rc::new(Configured { settings, auth }))
        }
        Err(e) => {
            worker::console_error!("refusing to serve: edge-registry is misconfigured: {e}");
            Err(e)
        }
    }
}
