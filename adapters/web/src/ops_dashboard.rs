//! The operator dashboard's pages (split from `pages.rs` by audience, issue 15
//! §6): `/ops` with the panels of the signed-in staff member's roles, and one
//! incident's report. The panels' forms are `ops_pages` and `ops_forms`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use maud::{Markup, html};

use crate::AppState;
use crate::pages::*;
use crate::svc;
use mebyo_domain::panel::Panel;

fn bars(label: &str, data: &[(String, u32)]) -> Markup {
    let (w, h, pad) = (600.0, 160.0, 24.0);
    let max = data.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let bw = if data.is_empty() {
        0.0
    } else {
        (w - 2.0 * pad) / data.len() as f64
    };
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(label) {
                title { (label) }
                line x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) stroke="#444" {}
                @for (i, (_, n)) in data.iter().enumerate() {
                    @let bh = *n as f64 / max * (h - 2.0 * pad);
                    rect x=(format!("{:.1}", pad + i as f64 * bw + 2.0)) y=(format!("{:.1}", h - pad - bh))
                        width=(format!("{:.1}", (bw - 4.0).max(1.0))) height=(format!("{:.1}", bh)) fill="#0b57d0" {}
                }
                text x="2" y=(pad) font-size="12" fill="#1a1a1a" { (max) }
            }
            figcaption { (label) }
        }
    }
}

async fn dashboard(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops")?;
    let s = svc::ops_summary(&st, &a).await.page(l, "/")?;
    let no_access = Vec::new();
    let access = s.access.as_ref().unwrap_or(&no_access);
    let volume: Vec<(String, u32)> = {
        let mut by_hour = std::collections::BTreeMap::<String, u32>::new();
        for p in access {
            for (h, g, r) in &p.last_24h {
                *by_hour.entry(h.clone()).or_default() += g + r;
            }
        }
        by_hour.into_iter().collect()
    };
    let none = l.t("記録なし", "none recorded");
    let forms = crate::ops_pages::forms(&st, &a);
    let csrf = a.session.csrf.as_str();
    let body = html! {
        p { (l.t("集計のみを表示し、健康情報は表示しません（第4.6条(2)）。", "Aggregates only; no health content is shown (clause 4.6(2)).")) " "
            (l.t("表示内容は役割によります（第3.1条）。", "What is shown depends on your role (clause 3.1).")) " "
            (l.t("更新: ", "As of ")) (jst(&s.generated_at)) }
        div.grid {
            @if let (Some(r), Some(per_day)) = (&s.registrations, &s.registrations_per_day) {
                section.card #panel-registrations aria-labelledby="reg-h" {
                    h2 id="reg-h" { (l.t("登録者", "Registrations")) }
                    dl.kv {
                        dt { (l.t("登録累計", "Registered")) } dd #registered { (r.registered) }
                        dt { (l.t("利用中", "Active")) } dd { (r.active) }
                        dt { (l.t("退会（消去待ち）", "Withdrawn")) } dd { (r.withdrawn) }
                        dt { (l.t("消去済み", "Erased")) } dd { (r.erased) }
                    }
                    (bars(l.t("日別登録数（14日）", "Registrations per day (14 days)"), per_day))
                }
            }
            @if let Some(c) = &s.consents {
                section.card #panel-consents aria-labelledby="con-h" {
                    h2 id="con-h" { (l.t("同意", "Consents")) }
                    dl.kv {
                        dt { (l.t("有効", "Active")) } dd #consents-active { (c.active) }
                        dt { (l.t("撤回", "Revoked")) } dd #consents-revoked { (c.revoked) }
                        dt { (l.t("期限切れ", "Expired")) } dd { (c.expired) }
                    }
                }
            }
            @if let Some(c) = &s.chain {
                section.card #panel-chain aria-labelledby="chain-h" {
                    h2 id="chain-h" { (l.t("監査チェーン", "Audit chain")) }
                    dl.kv {
                        dt { (l.t("イベント数", "Events")) } dd #head-count { (c.head_count) }
                        dt { (l.t("先頭ハッシュ", "Head hash")) } dd { code.hash #head-hash { (c.head_hash) } }
                        dt { (l.t("集計済み位置", "Projected to")) } dd { (c.projected_position) }
                        dt { (l.t("最新チェックポイント", "Last checkpoint")) }
                        dd #last-checkpoint {
                            @match &c.last_checkpoint {
                                Some(k) => { (jst(&k.at)) " · " (l.t("木のサイズ ", "tree size ")) (k.tree_size) " · " code.hash { (k.root_hash) } }
                                None => { (none) }
                            }
                        }
                        dt { (l.t("最終検証（復元訓練）", "Last verification (restore drill)")) }
                        dd #last-verification {
                            @match &c.last_verification {
                                Some(v) => { (jst(&v.at)) " · " (v.events) (l.t(" 件一致", " events matched")) " · " code { (v.full) } }
                                None => { (none) }
                            }
                        }
                    }
                    (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Chain))
                }
            }
        }
        @if let Some(providers) = &s.providers {
            section.card #panel-providers aria-labelledby="prov-h" {
                h2 id="prov-h" { (l.t("事業者と閲覧数", "Providers and reads")) }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { (l.t("事業者", "Provider")) }
                        th scope="col" { (l.t("状態", "State")) }
                        th scope="col" { (l.t("接続", "Connection")) }
                        @if s.access.is_some() {
                            th scope="col" { (l.t("閲覧", "Reads")) }
                            th scope="col" { (l.t("拒否", "Refused")) }
                        }
                    } }
                    tbody {
                        @for p in providers {
                            @let acc = access.iter().find(|x| x.provider == p.provider);
                            tr {
                                td { (p.provider) }
                                td { (p.status) }
                                td { (p.connection.as_deref().unwrap_or("-")) }
                                @if s.access.is_some() {
                                    td.num data-provider=(p.provider) data-kind="granted" { (acc.map_or(0, |x| x.granted)) }
                                    td.num data-provider=(p.provider) data-kind="refused" { (acc.map_or(0, |x| x.refused)) }
                                }
                            }
                        }
                    }
                } }
                @if s.access.is_some() {
                    (bars(l.t("直近24時間の閲覧数（時間別）", "Reads in the last 24 hours, by hour"), &volume))
                }
                (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Providers))
            }
        }
        div.grid {
            @if let Some(refusals) = &s.refusals {
                section.card #panel-refusals aria-labelledby="ref-h" {
                    h2 id="ref-h" { (l.t("拒否の内訳", "Refusals by code")) }
                    @if refusals.is_empty() { p { (l.t("なし", "None")) } }
                    ul { @for (code, n) in refusals { li { code { (code) } ": " (n) } } }
                }
            }
            @if let (Some(near), Some(expired), Some(revoked)) = (&s.credentials_near_expiry, &s.credentials_expired, s.revocations) {
                section.card #panel-credentials aria-labelledby="cred-h" {
                    h2 id="cred-h" { (l.t("接続情報", "Connection information")) }
                    p { (l.t("30日以内に期限: ", "Expiring within 30 days: ")) (near.len())
                        " · " (l.t("期限切れ: ", "Expired: ")) (expired.len())
                        " · " (l.t("取消: ", "Revoked: ")) (revoked) }
                    ul { @for c in near.iter().take(20) { li { code { (c.credential) } " " (c.holder) " → " (jst(&c.expires_at)) } } }
                    @if forms.revoke {
                        (crate::ops_pages::revoke_form(l, csrf))
                        (crate::ops_pages::rotation_form(l, csrf))
                    }
                    (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Credentials))
                }
            }
            @if let Some(b) = &s.backups {
                section.card #panel-backups aria-labelledby="bak-h" {
                    h2 id="bak-h" { (l.t("バックアップ（第4.10条）", "Backups (clause 4.10)")) }
                    @if b.overdue {
                        div.error role="alert" #backup-overdue {
                            @for f in &b.flags { p { (f) } }
                        }
                    }
                    dl.kv {
                        dt { (l.t("最新の完全バックアップ", "Last full")) }
                        dd #last-full { (backup_run(l, b.last_full.as_ref())) }
                        dt { (l.t("最新の差分バックアップ", "Last differential")) }
                        dd #last-differential { (backup_run(l, b.last_differential.as_ref())) }
                        dt { (l.t("完了 / 失敗", "Completed / failed")) } dd { (b.completed) " / " (b.failures) }
                        dt { (l.t("最新の失敗", "Last failure")) }
                        dd #last-failure {
                            @match &b.last_failure {
                                Some(f) => { (jst(&f.at)) " · " (f.operation) @if let Some(k) = &f.kind { " (" (k) ")" } }
                                None => { (l.t("なし", "none")) }
                            }
                        }
                        dt { (l.t("鍵エポック更新", "Epoch rotation")) }
                        dd { (b.last_epoch_rotation.as_deref().map(jst).unwrap_or_else(|| none.to_string())) }
                    }
                    @if forms.backup { (crate::ops_pages::backup_form(l, csrf)) }
                    (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Backups))
                }
            }
            @if let Some(i) = &s.incidents {
                section.card #panel-incidents aria-labelledby="inc-h" {
                    h2 id="inc-h" { (l.t("インシデント（第4.14条）", "Incidents (clause 4.14)")) }
                    p { (l.t("対応中: ", "Open: ")) span #incidents-open { (i.open.len()) }
                        " · " (l.t("終了: ", "Closed: ")) span #incidents-closed { (i.closed) } }
                    @if !i.open.is_empty() {
                        ul #open-incidents {
                            @for x in &i.open {
                                li { a href=(x.report_url) { code { (x.incident) } } " " (x.kind) " · " (jst(&x.reported_at))
                                    " · " (l.t("未実施の手順: ", "steps missing: ")) (x.missing_steps) }
                            }
                        }
                    }
                    @if !i.recently_closed.is_empty() {
                        h3 { (l.t("最近終了したもの", "Recently closed")) }
                        ul { @for x in &i.recently_closed { li { a href=(x.report_url) { code { (x.incident) } } " " (x.kind) " · " (jst(&x.reported_at)) } } }
                    }
                    @if forms.incidents { (crate::ops_pages::report_form(l, csrf)) }
                }
            }
            @if let Some(due) = &s.staff_training_due {
                section.card #panel-staff aria-labelledby="staff-h" {
                    h2 id="staff-h" { (l.t("職員研修", "Staff training")) }
                    p { (l.t("研修期限が近い職員: ", "Staff training due: ")) (due.len()) }
                    (crate::staff_signin::reset_form(l, csrf))
                    (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Staff))
                }
            }
            @if s.panels.contains(&Panel::Operations) {
                section.card #panel-operations aria-labelledby="opsr-h" {
                    h2 id="opsr-h" { (l.t("定常業務（第4.3・4.4・4.7・4.9条）", "Routine operations (clauses 4.3, 4.4, 4.7, 4.9)")) }
                    p { (l.t("媒体台帳、廃棄、保守の予告、ファイアウォールログの確認。", "The media ledger, disposals, maintenance notices and firewall log reviews.")) }
                    (crate::ops_forms::panel_forms(l, csrf, &forms.roles, Panel::Operations))
                }
            }
        }
    };
    Ok(signed_page(
        l,
        &a,
        l.t("運用ダッシュボード", "Operations dashboard"),
        "/ops",
        body,
    ))
}

fn backup_run(l: Lang, r: Option<&svc::BackupRunView>) -> Markup {
    html! {
        @match r {
            Some(r) => {
                (jst(&r.started_at)) " · " code { (r.backup_id) }
                @if let (Some(from), Some(to)) = (r.from, r.to) { " · " (l.t("位置 ", "positions ")) (from) "–" (to) }
            }
            None => { (l.t("なし", "none")) }
        }
    }
}

/// One incident's report (P4.14): how the runbook was followed, what was
/// affected (counts only), who was told. From the incident's own stream.
async fn incident_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let a = svc::signed_in(&st, &headers).page(l, "/ops")?;
    let r = svc::incident_report(&st, &a, &id).await.page(l, "/ops")?;
    let missing: Vec<String> = r
        .compliance
        .iter()
        .filter(|c| c.status == mebyo_operations::report::StepStatus::Missing)
        .map(|c| c.step.to_string())
        .collect();
    let can_act = r.closed_at.is_none() && crate::ops_pages::forms(&st, &a).incidents;
    let body = html! {
        p { a href="/ops" { (l.t("ダッシュボードへ戻る", "Back to the dashboard")) } }
        p #incident-status { (r.title) " · " (l.t("根拠条項 ", "clause ")) code { (r.clause) } " · "
            (l.t("状態: ", "status: ")) strong { (r.status) } " · "
            @if r.compliant { (l.t("手順はすべて実施済み", "runbook complete")) }
            @else { strong.warn { (l.t("未実施の手順あり", "runbook INCOMPLETE")) } } }
        dl.kv {
            dt { (l.t("報告", "Reported")) } dd { (jst(&r.reported_at)) }
            dt { (l.t("発見", "Detected")) } dd { (jst(&r.detected_at)) }
            dt { (l.t("報告者", "Reported by")) } dd { (r.reported_by) }
            dt { (l.t("経緯", "Source")) } dd { (r.source) }
            dt { (l.t("委託先", "Contractor")) } dd { (r.contractor.as_deref().unwrap_or("—")) }
            dt { (l.t("VPN使用", "VPN used")) } dd { (r.vpn_used) }
            dt { (l.t("終了", "Closed")) } dd { (r.closed_at.as_deref().map(jst).unwrap_or_else(|| "—".into())) }
        }
        section.card aria-labelledby="rb-h" {
            h2 id="rb-h" { (l.t("手順の実施状況", "Runbook compliance")) }
            div.scroll { table #runbook {
                thead { tr {
                    th scope="col" { (l.t("手順", "Step")) }
                    th scope="col" { (l.t("条項", "Clause")) }
                    th scope="col" { (l.t("ポリシーの記載", "Policy")) }
                    th scope="col" { (l.t("担当", "Who")) }
                    th scope="col" { (l.t("状態", "Status")) }
                    th scope="col" { (l.t("実施", "Done")) }
                    th scope="col" { (l.t("報告からの分", "Minutes after report")) }
                } }
                tbody {
                    @for c in &r.compliance {
                        tr data-step=(c.step) {
                            td { code { (c.step) } }
                            td { (c.clause) }
                            td lang="ja" { (c.policy_text) }
                            td { (c.who) }
                            td data-status=(enum_key(c.status)) { (enum_key(c.status)) }
                            td { (c.done_at.as_deref().map(jst).unwrap_or_default()) " " (c.by.as_deref().unwrap_or("")) }
                            td.num { (c.minutes_after_report.map(|m| m.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            } }
        }
        div.grid {
            section.card aria-labelledby="aff-h" {
                h2 id="aff-h" { (l.t("影響（件数のみ）", "Affected (counts only)")) }
                dl.kv {
                    dt { (l.t("評価済み", "Assessed")) } dd { (r.affected.assessed) }
                    dt { (l.t("漏えいの可能性", "Leak possible")) } dd { (r.affected.leak_possible) }
                    dt { (l.t("本人の情報", "Individuals' data")) } dd { (r.affected.individuals_data) }
                    dt { (l.t("対象者数", "Individuals")) } dd { (r.affected.individuals) }
                    dt { (l.t("記録数", "Records")) } dd { (r.affected.records) }
                }
            }
            section.card aria-labelledby="not-h" {
                h2 id="not-h" { (l.t("連絡", "Notifications")) }
                @if r.notifications.is_empty() { p { (l.t("なし", "None")) } }
                ul { @for n in &r.notifications { li { (jst(&n.at)) " → " (n.to) @if n.count > 0 { " (" (n.count) ")" } " · " (n.by) } } }
                @if !r.credentials_rotated.is_empty() {
                    h3 { (l.t("変更した接続情報", "Connection information changed")) }
                    ul { @for c in &r.credentials_rotated { li { code { (c.revoked) } " → " code { (c.issued) } } } }
                }
            }
        }
        @if can_act {
            section.card aria-labelledby="act-h" {
                h2 id="act-h" { (l.t("対応を記録する", "Record the response")) }
                (crate::ops_pages::incident_forms(l, &a.session.csrf, &r.incident, &missing))
            }
        }
        section.card aria-labelledby="tl-h" {
            h2 id="tl-h" { (l.t("経過", "Timeline")) }
            ol #timeline { @for t in &r.timeline { li { (jst(&t.at)) " · " (t.what) @if let Some(b) = &t.by { " · " (b) } " · " code { (t.clause) } } } }
        }
    };
    let title = format!("{} {}", l.t("インシデント", "Incident"), r.incident);
    Ok(signed_page(l, &a, &title, "/ops", body))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ops", get(dashboard))
        .route("/ops/incidents/{id}", get(incident_page))
}
