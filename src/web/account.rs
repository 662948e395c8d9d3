//! The account page of a provider or staff member, and what its buttons
//! do: view the Support PIN, generate a new one, answer a case.
//!
//! Every route is under `/users/{user_id}` and answers 403 for anyone but
//! that user, in the same words whether the ID exists or not. Showing the
//! PIN is the answer to the View (or Generate) POST itself, never a GET, so
//! it cannot end up in history, a prefetch or a shared link.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono_tz::Tz;
use serde::Deserialize;

use super::auth::UserSession;
use super::blocking;
use super::error::PageError;
use super::login::TokenForm;
use super::time::{parse_zone, zone_or_utc};
use super::view::account::{AccountPage, Notice, page as account_page};
use crate::domain::account::{Role, User, UserId};
use crate::domain::audit::{Actor, Channel, StoredEvent};
use crate::domain::case::{CaseNumber, Decision};
use crate::error::{Error, Result};
use crate::registry::{CaseView, Origin, Registry, ReplyOutcome};
use crate::server::AppState;

/// Audit events per page.
const PAGE_SIZE: u32 = 10;

/// The account page's query: a zone to show times in, a page of the
/// audit log, and what a redirect came back from.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AccountQuery {
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    case: Option<String>,
}

impl AccountQuery {
    fn notice(&self) -> Option<Notice> {
        let case = CaseNumber::parse(self.case.as_deref()?).ok()?;
        match self.notice.as_deref()? {
            "approved" => Some(Notice::Approved(case)),
            "declined" => Some(Notice::Declined(case)),
            _ => None,
        }
    }
}

/// An Approve or Decline button's form.
#[derive(Deserialize)]
pub(super) struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// What the page shows, as loaded.
struct Account {
    user: User,
    events: Vec<StoredEvent>,
    page: u32,
    more: bool,
    awaiting: Vec<CaseView>,
    pending: Vec<CaseView>,
}

fn web_origin(user: UserId) -> Origin {
    Origin {
        actor: Actor::User(user),
        channel: Channel::Web,
        call_sid: None,
    }
}

/// `GET /account`: the signed-in user's own page.
pub(super) async fn mine(
    State(app): State<AppState>,
    signed: UserSession,
    Query(query): Query<AccountQuery>,
) -> Result<Redirect, PageError> {
    choose_zone(&app, &signed, query.tz.as_deref()).await?;
    Ok(Redirect::to(&format!("/users/{}", signed.user)))
}

/// `GET /users/{user_id}`.
pub(super) async fn page(
    State(app): State<AppState>,
    signed: UserSession,
    Path(user_id): Path<String>,
    Query(query): Query<AccountQuery>,
) -> Result<Response, PageError> {
    let user = signed.owns(&user_id)?;
    let (zone, known) = choose_zone(&app, &signed, query.tz.as_deref()).await?;
    let account = load(&app, user, query.page.unwrap_or(1)).await?;
    let notice = if known {
        query.notice()
    } else {
        Some(Notice::UnknownZone)
    };
    let tz_auto = signed.session.time_zone.is_none() && query.tz.is_none();
    Ok(render(&account, &signed, zone, None, notice, tz_auto))
}

/// `POST /users/{user_id}/pin/view`: shows the PIN; audited as `viewed`.
pub(super) async fn view_pin(
    State(app): State<AppState>,
    signed: UserSession,
    Path(user_id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let user = signed.owns(&user_id)?;
    signed.check_form(&form.csrf)?;
    let pin = blocking(&app, move |registry| {
        registry.view_pin(user, &web_origin(user))
    })
    .await?;
    let account = load(&app, user, 1).await?;
    let zone = zone_or_utc(signed.session.time_zone.as_deref());
    Ok(render(
        &account,
        &signed,
        zone,
        Some(pin.reveal()),
        None,
        false,
    ))
}

/// `POST /users/{user_id}/pin/new`: a new PIN (audited as `generated`),
/// shown at once (audited as `viewed`).
pub(super) async fn new_pin(
    State(app): State<AppState>,
    signed: UserSession,
    Path(user_id): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let user = signed.owns(&user_id)?;
    signed.check_form(&form.csrf)?;
    let pin = blocking(&app, move |registry| {
        registry.renew_pin(user, &web_origin(user))?;
        registry.view_pin(user, &web_origin(user))
    })
    .await?;
    tracing::info!(%user, "Support PIN renewed on the web");
    let account = load(&app, user, 1).await?;
    let zone = zone_or_utc(signed.session.time_zone.as_deref());
    let notice = Some(Notice::PinGenerated);
    Ok(render(
        &account,
        &signed,
        zone,
        Some(pin.reveal()),
        notice,
        false,
    ))
}

/// What answering a case came to.
enum Replied {
    /// The case awaits someone else, or nobody: not this user's.
    NotYours,
    /// It was decided or closed meanwhile.
    TooLate,
    /// Recorded.
    Done(ReplyOutcome),
}

/// `POST /users/{user_id}/cases/{case_number}`: Approve or Decline.
pub(super) async fn reply(
    State(app): State<AppState>,
    signed: UserSession,
    Path((user_id, number)): Path<(String, String)>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, PageError> {
    let user = signed.owns(&user_id)?;
    signed.check_form(&form.csrf)?;
    let number = CaseNumber::parse(&number).map_err(|_| PageError::Forbidden)?;
    let decision = match form.decision.as_str() {
        "approve" => Decision::Approve,
        "decline" => Decision::Decline,
        _ => return Err(PageError::Conflict("Choose Approve or Decline.")),
    };
    let case = number.clone();
    let replied = blocking(&app, move |registry| {
        answer_case(registry, user, &case, decision)
    })
    .await?;
    let word = match replied {
        Replied::NotYours => return Err(PageError::Forbidden),
        Replied::TooLate => {
            return Err(PageError::Conflict(
                "This case was decided or closed meanwhile.",
            ));
        }
        Replied::Done(ReplyOutcome::Approved) => "approved",
        Replied::Done(_) => "declined",
    };
    tracing::info!(%user, case = %number, outcome = word, "case answered on the web");
    let to = format!("/users/{user}?notice={word}&case={number}");
    Ok(Redirect::to(&to).into_response())
}

/// Records `user`'s decision on `case` if the case awaits them.
fn answer_case(
    registry: &Registry,
    user: UserId,
    case: &CaseNumber,
    decision: Decision,
) -> Result<Replied> {
    let awaiting = registry.cases_awaiting(user)?;
    if !awaiting.iter().any(|c| &c.case_number == case) {
        return Ok(Replied::NotYours);
    }
    match registry.reply_to_case(case, user, decision, None, &web_origin(user)) {
        Ok(outcome) => Ok(Replied::Done(outcome)),
        // Decided or closed between the two reads.
        Err(Error::Invalid(_)) => Ok(Replied::TooLate),
        Err(e) => Err(e),
    }
}

/// The zone to show times in: `tz` if it is one (remembered for the
/// session), else the session's, else UTC. The flag is false when `tz`
/// was given but is no zone.
async fn choose_zone(
    app: &AppState,
    signed: &UserSession,
    tz: Option<&str>,
) -> Result<(Tz, bool), PageError> {
    let current = zone_or_utc(signed.session.time_zone.as_deref());
    let Some(asked) = tz.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok((current, true));
    };
    let Some(zone) = parse_zone(asked) else {
        return Ok((current, false));
    };
    let cookie = signed.cookie.clone();
    let name = zone.name().to_owned();
    blocking(app, move |registry| {
        registry.set_web_time_zone(&cookie, &name)
    })
    .await?;
    Ok((zone, true))
}

async fn load(app: &AppState, user: UserId, page: u32) -> Result<Account, PageError> {
    let page = page.max(1);
    blocking(app, move |registry| {
        let user = registry.user(user)?;
        let offset = (page - 1).saturating_mul(PAGE_SIZE);
        let mut events = registry.audit_events(user.user_id, PAGE_SIZE + 1, offset)?;
        let more = events.len() > PAGE_SIZE as usize;
        events.truncate(PAGE_SIZE as usize);
        let awaiting = match user.role {
            Role::Provider => registry.cases_awaiting(user.user_id)?,
            Role::Staff => Vec::new(),
        };
        let pending = registry.cases_pending_for(user.user_id)?;
        Ok(Account {
            user,
            events,
            page,
            more,
            awaiting,
            pending,
        })
    })
    .await
}

fn render(
    account: &Account,
    signed: &UserSession,
    zone: Tz,
    pin: Option<&str>,
    notice: Option<Notice>,
    tz_auto: bool,
) -> Response {
    account_page(&AccountPage {
        user: &account.user,
        events: &account.events,
        page: account.page,
        more: account.more,
        awaiting: &account.awaiting,
        pending: &account.pending,
        zone,
        pin,
        notice,
        csrf: signed.session.csrf_token(),
        tz_auto,
    })
    .into_response()
}
