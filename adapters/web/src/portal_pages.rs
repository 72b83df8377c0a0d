//! The portal's pages for individuals (split from `pages.rs` by audience, issue
//! 15 §6): their records and charts, vitals, consents, who saw their data, their
//! password and notices. Shared page machinery (layout, language, forms) is in
//! `pages`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use maud::{Markup, html};
use mebyo_domain::fhir::VitalKind;
use mebyo_domain::records::RecordEntry;
use mebyo_domain::{Category, Purpose};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::*;
use crate::session::Principal;
use crate::svc::{self, Authed};

fn signed_individual(st: &AppState, headers: &HeaderMap, l: Lang) -> Result<Authed, PageError> {
    let a = svc::signed_in(st, headers).page(l, "/portal")?;
    svc::individual(&a).page(l, "/")?;
    Ok(a)
}

/// A line chart of one or two series over time, as inline SVG.
/// (name, colour, points as (time µs, value)).
type Series<'a> = (&'a str, &'a str, Vec<(i64, f64)>);

fn chart(l: Lang, label: &str, unit: &str, series: &[Series]) -> Markup {
    let (w, h, pad) = (600.0, 220.0, 36.0);
    let pts: Vec<&(i64, f64)> = series.iter().flat_map(|s| s.2.iter()).collect();
    if pts.is_empty() {
        return html! { p { (l.t("まだ記録がありません。", "No readings yet.")) } };
    }
    let (t0, t1) = pts
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (v0, v1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (v0, v1) = ((v0 - 5.0).floor(), (v1 + 5.0).ceil());
    let x = |t: i64| {
        if t1 == t0 {
            w / 2.0
        } else {
            pad + (t - t0) as f64 / (t1 - t0) as f64 * (w - 2.0 * pad)
        }
    };
    let y = |v: f64| h - pad - (v - v0) / (v1 - v0) * (h - 2.0 * pad);
    let date = |t: i64| {
        jst(&mebyo_platform::world::rfc3339_jst(
            mebyo_domain::Timestamp(t),
        ))[..10]
            .to_string()
    };
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(format!("{label} ({unit})")) {
                title { (label) " (" (unit) ")" }
                line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#444" {}
                line x1=(pad) y1=(pad) x2=(pad) y2=(h - pad) stroke="#444" {}
                text x="2" y=(pad + 4.0) font-size="12" fill="#1a1a1a" { (v1) }
                text x="2" y=(h - pad) font-size="12" fill="#1a1a1a" { (v0) }
                text x=(pad) y=(h - 8.0) font-size="12" fill="#1a1a1a" { (date(t0)) }
                text x=(w - pad) y=(h - 8.0) font-size="12" fill="#1a1a1a" text-anchor="end" { (date(t1)) }
                @for (_, color, s) in series {
                    polyline fill="none" stroke=(*color) stroke-width="2"
                        points=(s.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ")) {}
                    @for (t, v) in s {
                        circle cx=(format!("{:.1}", x(*t))) cy=(format!("{:.1}", y(*v))) r="3" fill=(*color) {}
                    }
                }
            }
            figcaption {
                (label) " (" (unit) ") "
                @for (name, color, _) in series {
                    span.key { svg width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(*color) {} } " " (name) " " }
                }
            }
        }
    }
}

fn provenance_text(l: Lang, r: &svc::RecordView) -> String {
    let origin = if r.origin == "self_entered" {
        l.t("本人入力", "self-entered")
    } else {
        l.t("医療機関", "medical institution")
    };
    match &r.original_identifier {
        Some(id) => format!("{origin} · {} · {id}", r.created_by),
        None => format!("{origin} · {}", r.created_by),
    }
}

async fn portal(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let me = svc::me(&st, &a).await.page(l, "/")?;
    let records: Vec<RecordEntry> = svc::my_records(&st, &a).await.page(l, "/")?;
    let mut bp_sys = vec![];
    let mut bp_dia = vec![];
    let mut weight = vec![];
    for r in records.iter().rev() {
        match r.vital {
            Some(VitalKind::BloodPressure) => {
                if let Some((s, d)) = svc::Glance::of(&r.resource).bp_values() {
                    bp_sys.push((r.effective_at.0, s));
                    bp_dia.push((r.effective_at.0, d));
                }
            }
            Some(VitalKind::Weight) => {
                if let Some((v, _)) = svc::Glance::of(&r.resource).value_quantity() {
                    weight.push((r.effective_at.0, v));
                }
            }
            _ => {}
        }
    }
    let views: Vec<svc::RecordView> = records.iter().map(svc::record_view).collect();
    let csrf = a.session.csrf.clone();
    let needs_policy = me.policy_in_force.is_some() && me.policy_accepted != me.policy_in_force;
    let body = html! {
        @if let Some(name) = &me.name { p { (name) (l.t(" さん", "")) } }
        @if needs_policy {
            p.warn role="alert" { (l.t("新しいセキュリティポリシーへの同意が必要です。", "Please accept the security policy in force.")) " "
                a href="/policy" { (l.t("確認する", "Review it")) } }
        }
        @if q.done.as_deref() == Some("vitals") { p.ok role="status" { (l.t("記録しました。", "Saved.")) } }
        section aria-labelledby="bp-h" {
            h2 id="bp-h" { (l.t("血圧を記録", "Record blood pressure")) }
            form.card method="post" action="/portal/vitals" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="blood_pressure";
                label for="systolic" { (l.t("最高血圧（mmHg）", "Systolic (mmHg)")) }
                input id="systolic" name="systolic" type="number" inputmode="numeric" min="50" max="300" required;
                label for="diastolic" { (l.t("最低血圧（mmHg）", "Diastolic (mmHg)")) }
                input id="diastolic" name="diastolic" type="number" inputmode="numeric" min="20" max="200" required;
                label for="bp_at" { (l.t("測定日時（空欄なら現在）", "Measured at (blank: now)")) }
                input id="bp_at" name="at" type="datetime-local";
                button type="submit" { (l.t("記録する", "Save")) }
            }
        }
        section aria-labelledby="wt-h" {
            h2 id="wt-h" { (l.t("体重を記録", "Record weight")) }
            form.card method="post" action="/portal/vitals" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="body_weight";
                label for="kg" { (l.t("体重（kg）", "Weight (kg)")) }
                input id="kg" name="kg" type="number" inputmode="decimal" min="1" max="500" step="0.1" required;
                label for="wt_at" { (l.t("測定日時（空欄なら現在）", "Measured at (blank: now)")) }
                input id="wt_at" name="at" type="datetime-local";
                button type="submit" { (l.t("記録する", "Save")) }
            }
        }
        section aria-labelledby="charts-h" {
            h2 id="charts-h" { (l.t("推移", "Over time")) }
            (chart(l, l.t("血圧", "Blood pressure"), "mmHg", &[
                (l.t("最高", "systolic"), "#b3261e", bp_sys),
                (l.t("最低", "diastolic"), "#0b57d0", bp_dia),
            ]))
            (chart(l, l.t("体重", "Weight"), "kg", &[(l.t("体重", "weight"), "#146c2e", weight)]))
        }
        section aria-labelledby="list-h" {
            h2 id="list-h" { (l.t("記録一覧", "All records")) }
            @if views.is_empty() { p { (l.t("まだ記録がありません。", "No records yet.")) } }
            @else {
                div.scroll {
                    table {
                        caption.sr { (l.t("記録一覧（新しい順）", "Records, newest first")) }
                        thead { tr {
                            th scope="col" { (l.t("日時", "When")) }
                            th scope="col" { (l.t("種類", "Kind")) }
                            th scope="col" { (l.t("値", "Value")) }
                            th scope="col" { (l.t("出所", "Provenance")) }
                        } }
                        tbody {
                            @for r in &views {
                                tr {
                                    td { (jst(&r.effective_at)) }
                                    td { (category_name(l, r.category)) @if let Some(v) = &r.vital { " · " (v) } }
                                    td { (r.summary) }
                                    td.prov { (provenance_text(l, r)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("わたしの記録", "My records"),
        "/portal",
        body,
    ))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn vitals_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let at = Some(field(&f, "at").to_string());
        let num = |name: &str| -> Result<f64, ApiError> {
            field(&f, name).trim().parse::<f64>().map_err(|_| {
                ApiError::invalid(
                    mebyo_domain::clause!("P2(1)"),
                    format!("{name} must be a number"),
                )
            })
        };
        let input = match field(&f, "kind") {
            "blood_pressure" => svc::VitalInput::BloodPressure {
                systolic: num("systolic")? as u32,
                diastolic: num("diastolic")? as u32,
                at,
            },
            "body_weight" => svc::VitalInput::BodyWeight { kg: num("kg")?, at },
            _ => {
                return Err(ApiError::invalid(
                    mebyo_domain::clause!("P2(1)"),
                    "unknown kind of reading",
                ));
            }
        };
        svc::add_vital(&st, &a, input, None).await?;
        Ok(see_other("/portal?done=vitals"))
    };
    run.await.page(l, "/portal")
}

const PURPOSES: [Purpose; 4] = [
    Purpose::Care,
    Purpose::HealthGuidance,
    Purpose::CheckupFollowUp,
    Purpose::MedicationReview,
];

async fn consents_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let consents = svc::my_consents(&st, &a).await.page(l, "/portal")?;
    st.caught_up().await;
    let providers = svc::providers(&st, true);
    let csrf = &a.session.csrf;
    let body = html! {
        @match q.done.as_deref() {
            Some("granted") => p.ok role="status" { (l.t("同意しました。", "Consent granted.")) },
            Some("revoked") => p.ok role="status" { (l.t("同意を撤回しました。", "Consent revoked.")) },
            _ => {}
        }
        section aria-labelledby="grant-h" {
            h2 id="grant-h" { (l.t("事業者に同意する", "Grant a provider access")) }
            @if providers.is_empty() { p { (l.t("同意できる事業者はまだありません。", "No approved providers yet.")) } }
            @else {
                form.card method="post" action="/portal/consents" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="provider" { (l.t("事業者", "Provider")) }
                    select id="provider" name="provider" required {
                        @for p in &providers { option value=(p.provider) { (p.provider) } }
                    }
                    fieldset {
                        legend { (l.t("提供するデータの種類", "Kinds of data")) }
                        @for c in Category::ALL {
                            @let key = enum_key(c);
                            div.check {
                                input type="checkbox" id={"cat-" (key)} name="categories" value=(key) checked[c == Category::Vitals];
                                label for={"cat-" (key)} { (category_name(l, c)) }
                            }
                        }
                    }
                    label for="purpose" { (l.t("利用目的", "Purpose")) }
                    select id="purpose" name="purpose" required {
                        @for p in PURPOSES { option value=(enum_key(p)) { (purpose_name(l, p)) } }
                    }
                    label for="days" { (l.t("有効期間（日）", "Valid for (days)")) }
                    input id="days" name="days" type="number" min="1" max="3650" value="90" required;
                    button type="submit" { (l.t("同意する", "Grant consent")) }
                }
            }
        }
        section aria-labelledby="list-h" {
            h2 id="list-h" { (l.t("これまでの同意", "My consents")) }
            @if consents.is_empty() { p { (l.t("同意はありません。", "No consents.")) } }
            @else {
                ul.items {
                    @for c in &consents {
                        li.card {
                            p {
                                strong { (c.provider) } " · " (purpose_name(l, c.purpose)) " · "
                                @for (i, cat) in c.categories.iter().enumerate() { @if i > 0 { "、" } (category_name(l, *cat)) }
                            }
                            p {
                                (l.t("状態: ", "State: "))
                                @match c.state.as_str() {
                                    "active" => (l.t("有効", "active")),
                                    "revoked" => (l.t("撤回済み", "revoked")),
                                    _ => (l.t("期限切れ", "expired")),
                                }
                                " · " (l.t("期限: ", "Expires: ")) (jst(&c.expires_at))
                            }
                            @if c.state == "active" {
                                form method="post" action={"/portal/consents/" (c.consent) "/revoke"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.secondary type="submit" aria-label={(l.t("撤回: ", "Revoke: ")) (c.provider)} { (l.t("撤回する", "Revoke")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("同意の管理", "My consents"),
        "/portal/consents",
        body,
    ))
}

async fn consents_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let categories = f
            .iter()
            .filter(|(k, _)| k == "categories")
            .map(|(_, v)| svc::parse_categories(v))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let input = svc::ConsentInput {
            provider: field(&f, "provider").into(),
            categories,
            purpose: svc::parse_purpose(field(&f, "purpose"))?,
            days: field(&f, "days").trim().parse().map_err(|_| {
                ApiError::invalid(mebyo_domain::clause!("P4.6(2)"), "days must be a number")
            })?,
            years_back: None,
        };
        svc::grant_consent(&st, &a, input, None).await?;
        Ok::<_, ApiError>(see_other("/portal/consents?done=granted"))
    };
    run.await.page(l, "/portal/consents")
}

async fn consent_revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(consent): Path<String>,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        svc::revoke_consent(&st, &a, &consent).await?;
        Ok::<_, ApiError>(see_other("/portal/consents?done=revoked"))
    };
    run.await.page(l, "/portal/consents")
}

async fn access_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let lines = svc::my_access_log(&st, &a, 200).await.page(l, "/portal")?;
    let body = html! {
        p { (l.t("あなたのデータへのすべてのアクセスと拒否を新しい順に表示します（第4.6条(2)）。",
                 "Every access to your data, and every refusal, newest first (clause 4.6(2)).")) }
        @if lines.is_empty() { p { (l.t("まだアクセスはありません。", "No access yet.")) } }
        @else {
            ul.items {
                @for x in &lines {
                    li.card.access {
                        p {
                            strong {
                                @match x.who.as_str() {
                                    "themselves" => (l.t("ご本人", "You")),
                                    "provider" => { (l.t("事業者 ", "Provider ")) (x.who_id.as_deref().unwrap_or("")) }
                                    "representative" => { (l.t("代理人 ", "Representative ")) (x.who_id.as_deref().unwrap_or("")) }
                                    "staff" => { (l.t("職員 ", "Staff ")) (x.who_id.as_deref().unwrap_or("")) }
                                    other => (other),
                                }
                            }
                            " · " (jst(&x.at))
                        }
                        p {
                            @if x.outcome == "granted" { span.granted { (l.t("閲覧", "Read")) } }
                            @else { span.refused { (l.t("拒否", "Refused")) } }
                            " · " (l.t("目的: ", "Purpose: ")) (purpose_name(l, x.purpose))
                            " · " @for (i, cat) in x.categories.iter().enumerate() { @if i > 0 { "、" } (category_name(l, *cat)) }
                        }
                        @if let Some(c) = &x.consent { p { (l.t("根拠となった同意: ", "Consent relied on: ")) code { (c) } } }
                        @if let (Some(code), Some(clause)) = (&x.refusal_code, &x.refusal_clause) {
                            p { (l.t("拒否理由: ", "Refusal: ")) code { (code) } " (" (clause) ")" }
                        }
                    }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("わたしのデータの閲覧履歴", "Who accessed my data"),
        "/portal/access",
        body,
    ))
}

/// Change one's own password (P4.8(2)): individuals and staff alike; staff replace
/// the one-time password printed when the platform was created.
async fn password_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/login")?;
    let body = html! {
        p { (l.t("変更すると、この端末を含むすべてのセッションが終了します。新しいパスワードで再度ログインしてください。",
                 "Changing it ends every session of this account, this one included; sign in again with the new password.")) }
        form.card method="post" action="/account/password" {
            input type="hidden" name="csrf" value=(a.session.csrf);
            label for="current_password" { (l.t("現在のパスワード", "Current password")) }
            input #current_password type="password" name="current_password" autocomplete="current-password" required;
            label for="new_password" { (l.t("新しいパスワード（10文字以上）", "New password (at least 10 characters)")) }
            input #new_password type="password" name="new_password" autocomplete="new-password" minlength="10" required;
            button type="submit" { (l.t("変更する", "Change password")) }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("パスワード変更", "Change password"),
        "/account/password",
        body,
    ))
}

async fn password_post(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> PageResult {
    let l = Lang::from_headers(&headers);
    let run = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        let staff = matches!(a.session.principal, Principal::Staff { .. });
        let input = svc::PasswordChange {
            current_password: field(&f, "current_password").to_string(),
            new_password: field(&f, "new_password").to_string(),
        };
        svc::change_password(&st, &a, input).await?;
        // Every session ended, this one too: back to the right sign-in page.
        Ok(see_other(if staff {
            "/ops/login?done=password"
        } else {
            "/login?done=password"
        }))
    };
    run.await.page(l, "/account/password")
}

async fn notices_page(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = signed_individual(&st, &headers, l)?;
    let body = html! {
        @if st.cfg.notices.is_empty() {
            p { (l.t("予定されているメンテナンスはありません。", "No maintenance is scheduled.")) }
        } @else {
            ul.items {
                @for n in &st.cfg.notices {
                    li.card { p { strong { (match l { Lang::Ja => &n.title_ja, Lang::En => &n.title_en }) } }
                        p { (jst(&n.starts_at)) " – " (jst(&n.ends_at)) } }
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("メンテナンスのお知らせ", "Maintenance notices"),
        "/portal/notices",
        body,
    ))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(portal))
        .route("/portal/vitals", post(vitals_post))
        .route("/portal/consents", get(consents_page).post(consents_post))
        .route("/portal/consents/{consent}/revoke", post(consent_revoke))
        .route("/portal/access", get(access_page))
        .route("/portal/notices", get(notices_page))
        .route("/account/password", get(password_page).post(password_post))
}
