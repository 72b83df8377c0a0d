//! The dashboard's actions (issue 15 §2): the forms each panel shows to the roles
//! that may use them, their outcome pages, and the page of one event of the log.
//! Forms post to the same functions as `/api/v1/ops/` (`ops_api`), so the browser
//! and a script meet the same deciders. No JavaScript (the CSP forbids it): a
//! destructive action asks for confirmation with a required checkbox, which the
//! server checks too, so a replayed or hand-made form without it changes nothing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use mebyo_domain::duty::Duty;
use mebyo_domain::{Actor, Role};
use mebyo_store::EventStore;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::ops_api::{self, IncidentInput, Recorded, StepInput};
use crate::pages::{Lang, PageCtx, PageResult, field, fields, jst, posted, signed_page};
use crate::svc::{self, Authed, Panel};

/// The roles the signed-in staff member holds now (a dismissal takes effect on the
/// next page, P3.1).
fn roles(st: &AppState, a: &Authed) -> ApiResult<Vec<Role>> {
    let staff = svc::staff(a)?;
    Ok(st.views.read().staff().roles(staff.as_str()))
}

/// Which forms a staff member sees: the deciders' own role rules, so a form is
/// shown exactly to those whose post the decider may accept.
pub struct Forms {
    /// The roles held now, for the forms of `ops_forms` (each asks its decider's rule).
    pub roles: Vec<Role>,
    pub revoke: bool,
    pub backup: bool,
    pub incidents: bool,
}

pub fn forms(st: &AppState, a: &Authed) -> Forms {
    let roles = roles(st, a).unwrap_or_default();
    let any = |f: fn(Role) -> bool| roles.iter().any(|r| f(*r));
    Forms {
        roles: roles.clone(),
        revoke: any(mebyo_domain::credential::revokes),
        backup: any(|r| Duty::Backup.allowed(r)),
        incidents: any(|r| mebyo_operations::incident::Level::Reporter.held_by(r)),
    }
}

pub(crate) fn confirm_box(l: Lang) -> Markup {
    html! {
        label.confirm {
            input type="checkbox" name="confirm" value="yes" required;
            " " (l.t("実行してよいことを確認しました", "I confirm this action"))
        }
    }
}

/// The forms of the credentials panel: revoke one (P4.13).
pub fn revoke_form(l: Lang, csrf: &str) -> Markup {
    html! {
        form.action method="post" action="/ops/credentials/revoke" #revoke-form {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("接続情報 ID", "Credential id")) " " input name="credential" required maxlength="64" pattern="[a-z0-9-]+"; }
            label { (l.t("理由（第4.13条）", "Reason (clause 4.13)")) " "
                select name="reason" {
                    option value="judged-risk" { (l.t("その他リスクがあると判断（(3)）", "Judged risk (3)")) }
                    option value="breach-of-law" { (l.t("法令違反（(1)）", "Breach of law (1)")) }
                    option value="improper-handling" { (l.t("指導後も改善されない不適切な取扱い（(2)）", "Improper handling not corrected (2)")) }
                }
            }
            (confirm_box(l))
            button type="submit" { (l.t("取り消す", "Revoke")) }
        }
    }
}

/// The credentials panel's half of a theft runbook (P4.14(4)): the prefecture,
/// which changes connection information, does not see the incidents panel, so
/// it names the incident here.
pub fn rotation_form(l: Lang, csrf: &str) -> Markup {
    html! {
        form.action method="post" action="/ops/rotations" #incident-rotation-form {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("インシデント ID", "Incident id")) " " input name="incident" required maxlength="64" pattern="[a-z0-9-]+"; }
            label { (l.t("盗難端末の接続情報 ID", "Credential the device held")) " " input name="credential" required maxlength="64" pattern="[a-z0-9-]+"; }
            (confirm_box(l))
            button type="submit" { (l.t("取り消して再発行", "Revoke and reissue")) }
        }
    }
}

/// The form of the backups panel: a backup now (P4.10).
pub fn backup_form(l: Lang, csrf: &str) -> Markup {
    html! {
        form.action method="post" action="/ops/backups" #backup-form {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("種類", "Kind")) " "
                select name="kind" {
                    option value="full" { (l.t("完全", "Full")) }
                    option value="differential" { (l.t("差分", "Differential")) }
                }
            }
            (confirm_box(l))
            button type="submit" { (l.t("今すぐバックアップ", "Back up now")) }
        }
    }
}

/// The form of the incidents panel: report one (P4.14(1)).
pub fn report_form(l: Lang, csrf: &str) -> Markup {
    html! {
        form.action method="post" action="/ops/incidents" #incident-form {
            input type="hidden" name="csrf" value=(csrf);
            label { (l.t("種類", "Kind")) " "
                select name="kind" {
                    option value="theft-or-loss" { (l.t("盗難・紛失", "Theft or loss")) }
                    option value="unauthorized-access" { (l.t("不正アクセス", "Unauthorized access")) }
                    option value="malware" { (l.t("マルウェア", "Malware")) }
                    option value="contractor" { (l.t("委託先に起因", "Caused by a contractor")) }
                    option value="other" { (l.t("その他", "Other")) }
                }
            }
            label { input type="checkbox" name="vpn_used" value="yes"; " " (l.t("VPN 接続に使用していた", "It connected over VPN")) }
            button type="submit" { (l.t("報告する", "Report")) }
        }
    }
}

/// The forms of an incident's page: record a missing step, change the connection
/// information a stolen device held, close.
pub fn incident_forms(l: Lang, csrf: &str, id: &str, missing: &[String]) -> Markup {
    html! {
        @if !missing.is_empty() {
            form.action method="post" action={"/ops/incidents/" (id) "/steps"} #step-form {
                input type="hidden" name="csrf" value=(csrf);
                label { (l.t("実施した手順", "Step done")) " "
                    select name="step" { @for s in missing { option value=(s) { (s) } } }
                }
                label { (l.t("参照番号（任意）", "Reference (optional)")) " " input name="reference" maxlength="64"; }
                (confirm_box(l))
                button type="submit" { (l.t("記録する", "Record")) }
            }
        }
        @if missing.iter().any(|s| s == "change-connection-info") {
            form.action method="post" action={"/ops/incidents/" (id) "/rotations"} #rotation-form {
                input type="hidden" name="csrf" value=(csrf);
                label { (l.t("盗難端末の接続情報 ID", "Credential the device held")) " " input name="credential" required maxlength="64" pattern="[a-z0-9-]+"; }
                (confirm_box(l))
                button type="submit" { (l.t("取り消して再発行", "Revoke and reissue")) }
            }
        }
        form.action method="post" action={"/ops/incidents/" (id) "/close"} #close-form {
            input type="hidden" name="csrf" value=(csrf);
            (confirm_box(l))
            button type="submit" { (l.t("終了する", "Close")) }
        }
    }
}

/// A destructive form must carry its confirmation; the browser asks for it, and a
/// form sent without it (replayed, or made by hand) changes nothing.
pub(crate) fn confirmed(f: &[(String, String)]) -> ApiResult<()> {
    if field(f, "confirm") == "yes" {
        Ok(())
    } else {
        Err(ApiError::invalid(
            mebyo_domain::clause!("P4.4"),
            "confirm the action: tick the confirmation box",
        ))
    }
}

/// The outcome of an action: what was done and the event that records it.
pub(crate) fn done_page(l: Lang, a: &Authed, what: &str, r: &Recorded) -> Response {
    let body = html! {
        div.notice role="status" #outcome {
            p { (what) }
            p { (l.t("記録: ", "Recorded as ")) a href=(r.link) #event-link { (l.t("イベント ", "event ")) (r.position) }
                " · " code.hash { (r.hash) } }
            @if !r.made.is_empty() { p { (l.t("作成: ", "Made: ")) @for m in &r.made { code.made { (m) } " " } } }
        }
        p { a href="/ops" { (l.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
    };
    signed_page(l, a, l.t("完了", "Done"), "/ops", body)
}

/// Runs a posted dashboard form: the CSRF field checked against the cookie
/// session (P4.6(1)), a staff member's, the confirmation if `confirm`, then `run`.
async fn act<F, Fut>(
    st: AppState,
    headers: &HeaderMap,
    body: &Bytes,
    confirm: bool,
    what: (&'static str, &'static str),
    run: F,
) -> PageResult
where
    F: FnOnce(AppState, Vec<(String, String)>, Actor) -> Fut,
    Fut: std::future::Future<Output = ApiResult<Recorded>>,
{
    let l = Lang::from_headers(headers);
    let work = async {
        let f = fields(body)?;
        let a = posted(&st, headers, &f)?;
        let actor = Actor::Staff {
            staff: svc::staff(&a)?,
        };
        if confirm {
            confirmed(&f)?;
        }
        let r = run(st.clone(), f, actor).await?;
        Ok::<_, ApiError>((a, r))
    };
    let (a, r) = work.await.page(l, "/ops")?;
    Ok(done_page(l, &a, l.t(what.0, what.1), &r))
}

async fn revoke_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    act(
        st,
        &headers,
        &body,
        true,
        ("接続情報を取り消しました。", "The credential is revoked."),
        |st, f, actor| async move {
            ops_api::revoke(&st, &actor, field(&f, "credential"), field(&f, "reason")).await
        },
    )
    .await
}

async fn backup_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    act(
        st,
        &headers,
        &body,
        true,
        ("バックアップを取得しました。", "The backup is taken."),
        |st, f, actor| async move { ops_api::backup(&st, &actor, field(&f, "kind")).await },
    )
    .await
}

async fn incident_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    act(
        st,
        &headers,
        &body,
        false,
        ("インシデントを報告しました。", "The incident is reported."),
        |st, f, actor| async move {
            let input = IncidentInput {
                kind: field(&f, "kind").to_string(),
                detected_at: None,
                vpn_used: field(&f, "vpn_used") == "yes",
                contractor: Some(field(&f, "contractor"))
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            };
            ops_api::open_incident(&st, &actor, &input).await
        },
    )
    .await
}

async fn step_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    act(
        st,
        &headers,
        &body,
        true,
        ("手順を記録しました。", "The step is recorded."),
        |st, f, actor| async move {
            let input = StepInput {
                step: field(&f, "step").to_string(),
                reference: Some(field(&f, "reference"))
                    .filter(|r| !r.is_empty())
                    .map(str::to_string),
                done_at: None,
            };
            ops_api::record_step(&st, &actor, &id, &input).await
        },
    )
    .await
}

async fn rotation_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    rotation(st, headers, body, Some(id)).await
}

/// A rotation naming its incident in a field (the credentials panel's form).
async fn rotation_by_field_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    rotation(st, headers, body, None).await
}

/// A stolen device's credential revoked and reissued for an incident, named by
/// the page's path or, without one, by the form's `incident` field.
async fn rotation(st: AppState, headers: HeaderMap, body: Bytes, id: Option<String>) -> PageResult {
    act(
        st,
        &headers,
        &body,
        true,
        (
            "接続情報を取り消して再発行しました。",
            "The credential is revoked and reissued.",
        ),
        |st, f, actor| async move {
            let id = id.unwrap_or_else(|| field(&f, "incident").to_string());
            let credential = [field(&f, "credential").to_string()];
            ops_api::rotate(&st, &actor, &id, &credential).await
        },
    )
    .await
}

async fn close_post(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    act(
        st,
        &headers,
        &body,
        true,
        ("インシデントを終了しました。", "The incident is closed."),
        |st, _, actor| async move { ops_api::close(&st, &actor, &id).await },
    )
    .await
}

/// One event of the log as the chain panel's roles may see it: where it is, what
/// kind, who, when, and its hashes; never its payload (staff see no health
/// content, P4.6(2)), only whether it is sealed and how long it is.
async fn event_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(position): Path<String>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops")?;
    let staff = svc::staff(&a).page(l, "/ops")?;
    let shown = svc::panels(&st, &staff).page(l, "/ops")?;
    let position: u64 = position
        .parse()
        .map_err(|_| ApiError::not_found())
        .page(l, "/ops")?;
    let page = st
        .platform
        .store()
        .read_all(position, 1)
        .await
        .map_err(|e| ApiError::from(mebyo_platform::PlatformError::from(e)))
        .page(l, "/ops")?;
    let e = page.into_iter().next().filter(|e| e.position == position);
    let by_viewer = e.as_ref().is_some_and(|e| e.actor.id == staff.as_str());
    if !mebyo_domain::panel::event_visible(&shown, by_viewer) {
        // The chain panel's refusal, whether or not the position exists.
        svc::require_panel(&st, &staff, Panel::Chain).page(l, "/ops")?;
    }
    let Some(e) = e else {
        return Err(ApiError::not_found()).page(l, "/ops");
    };
    let at = mebyo_platform::world::rfc3339_jst(mebyo_domain::Timestamp(e.recorded_at_us));
    let sealed = e.payload_kind == mebyo_store::PayloadKind::AesSiv;
    let body = html! {
        p { a href="/ops" { (l.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
        dl.kv #event {
            dt { (l.t("位置", "Position")) } dd #event-position { (e.position) }
            dt { (l.t("種類", "Type")) } dd #event-type { code { (e.event_type) } }
            dt { (l.t("ストリーム", "Stream")) } dd { code { (e.stream_id) } " #" (e.stream_revision) }
            dt { (l.t("実行者", "Actor")) } dd { code { (e.actor.role) ":" (e.actor.id) } }
            dt { (l.t("記録日時", "Recorded")) } dd { (jst(&at)) }
            dt { (l.t("ハッシュ", "Hash")) } dd { code.hash #event-hash { (hex::encode(e.hash)) } }
            dt { (l.t("直前のハッシュ", "Previous hash")) } dd { code.hash { (hex::encode(e.prev_hash)) } }
            dt { (l.t("内容", "Payload")) } dd { (e.payload.len()) (l.t(" バイト", " bytes")) " · "
                @if sealed { (l.t("暗号化済み（第4.8条(1)）", "sealed (clause 4.8(1))")) } @else { (l.t("運用記録（個人データなし）", "operational (no personal data)")) } }
        }
    };
    let title = format!("{} {}", l.t("イベント", "Event"), e.position);
    Ok(signed_page(l, &a, &title, "/ops", body))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ops/events/{position}", get(event_page))
        .route("/ops/credentials/revoke", post(revoke_post))
        .route("/ops/backups", post(backup_post))
        .route("/ops/incidents", post(incident_post))
        .route("/ops/incidents/{id}/steps", post(step_post))
        .route("/ops/incidents/{id}/rotations", post(rotation_post))
        .route("/ops/rotations", post(rotation_by_field_post))
        .route("/ops/incidents/{id}/close", post(close_post))
}
