//! `pinline user login-link`: a one-time sign-in link for the web pages,
//! as the host product would mint one for a signed-in user.

use clap::Args;
use serde_json::json;

use super::{Cli, Needs, print_json};
use crate::domain::account::UserId;
use crate::domain::audit::format_time;
use crate::error::Result;

/// Where `serve` listens unless told otherwise.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Args)]
pub(super) struct LoginLinkArgs {
    /// User ID.
    user: UserId,
    /// The address the pages are reached at [default: http://127.0.0.1:8080].
    #[arg(long, env = "PINLINE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Print `{"user_id": …, "url": …, "code": …, "expires_at": …}`.
    #[arg(long)]
    json: bool,
}

/// Issues the code (stored hashed) and prints the link and the code.
pub(super) fn login_link(cli: &Cli, args: &LoginLinkArgs) -> Result<()> {
    let registry = cli.registry(Needs::Nothing)?;
    let code = registry.issue_login_code(args.user)?;
    let base = args
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_PUBLIC_URL)
        .trim_end_matches('/');
    let url = format!("{base}/login/{}", code.as_str());
    let expires_at = format_time(code.expires_at);
    if args.json {
        print_json(&json!({
            "user_id": code.user_id,
            "url": url,
            "code": code.grouped(),
            "expires_at": expires_at,
        }))?;
    } else {
        println!("{url}");
        println!("{}", code.grouped());
        println!("Works once, until {expires_at}.");
    }
    Ok(())
}
