//! The dashboard's forms for the staff commands that are one JSON post each
//! (issue 15 §2): a row of [`FORMS`] per command. Each row names the panel it
//! sits in, the roles it is shown to (the decider's own rule, from `domain/`), its
//! fields and the `/api/v1/ops/…` endpoint it becomes. A posted form goes to
//! `/ops/act/{form}`, which checks the form's CSRF field against the cookie
//! session and, for a destructive one, the confirmation box, then sends the
//! fields as that endpoint's JSON through the same router. So the browser meets
//! exactly the endpoint's parsing, decider and answer: nothing is decided here.
//!
//! No JavaScript (the CSP forbids it): each form is a `<details>` element, shut
//! until opened, and a destructive one asks for a ticked confirmation, which is
//! checked again on the server, so a replayed or hand-made form without it
//! changes nothing.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, header};
use axum::routing::post;
use maud::{Markup, html};
use mebyo_domain::duty::Duty;
use mebyo_domain::{Role, panel::Panel};

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::ops_api::Recorded;
use crate::ops_pages::{confirm_box, confirmed, done_page};
use crate::pages::{Lang, PageCtx, PageResult, field, fields, posted};

/// How a field is asked for in the browser.
#[derive(Clone, Copy)]
pub enum Input {
    /// One line of text, at most this many characters.
    Text(u16),
    /// One of these values, each with its Japanese and English label.
    Select(&'static [(&'static str, &'static str, &'static str)]),
    /// A whole number in this range.
    Number(i64, i64),
    /// A date and time, read as JST (`datetime-local`).
    When,
    /// A box to tick.
    Check,
}

/// Where a field goes in the endpoint's request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// Into the path, at `{name}`.
    Path,
    /// A JSON string.
    Str,
    /// A JSON string, left out when the field is empty.
    OptStr,
    /// A JSON number.
    Int,
    /// A JSON boolean: ticked or not.
    Bool,
    /// A JSON list of strings, from a comma-separated field.
    List,
}

pub struct Field {
    pub name: &'static str,
    pub label: (&'static str, &'static str),
    pub input: Input,
    pub to: To,
    pub required: bool,
}

pub struct Form {
    /// The form's name in `/ops/act/{id}`; its HTML id is `{id}-form`.
    pub id: &'static str,
    pub panel: Panel,
    pub title: (&'static str, &'static str),
    pub button: (&'static str, &'static str),
    /// What the outcome page says.
    pub done: (&'static str, &'static str),
    /// The endpoint, with `{name}` for each `To::Path` field.
    pub api: &'static str,
    pub fields: &'static [Field],
    /// Asks for a ticked confirmation, checked on the server too.
    pub destructive: bool,
    /// The roles the form is shown to: the rule of the decider behind `api`.
    pub shown_to: fn(Role) -> bool,
    /// The clause a form that cannot be sent cites (a required field empty).
    pub clause: &'static str,
}

const fn text(
    name: &'static str,
    label: (&'static str, &'static str),
    to: To,
    required: bool,
) -> Field {
    Field {
        name,
        label,
        input: Input::Text(64),
        to,
        required,
    }
}

const fn pick(
    name: &'static str,
    label: (&'static str, &'static str),
    options: &'static [(&'static str, &'static str, &'static str)],
) -> Field {
    Field {
        name,
        label,
        input: Input::Select(options),
        to: To::Str,
        required: true,
    }
}

const fn when(name: &'static str, label: (&'static str, &'static str), required: bool) -> Field {
    Field {
        name,
        label,
        input: Input::When,
        to: if required { To::Str } else { To::OptStr },
        required,
    }
}

const CREDENTIAL: Field = text(
    "credential",
    ("接続情報 ID", "Credential id"),
    To::Path,
    true,
);
const STAFF: Field = text("staff", ("職員 ID", "Staff id"), To::Path, true);
const MEDIA: Field = text("media", ("媒体 ID", "Medium id"), To::Path, true);
const DIGEST: Field = Field {
    name: "digest",
    label: (
        "内容のハッシュ（blake3、16進64桁）",
        "Contents digest (blake3, 64 hex)",
    ),
    input: Input::Text(64),
    to: To::Str,
    required: true,
};

const DECISIONS: &[(&str, &str, &str)] = &[
    ("approve", "承認", "Approve"),
    ("reject", "却下", "Reject"),
    ("suspend", "停止", "Suspend"),
    ("reinstate", "再開", "Reinstate"),
    ("revoke", "承認取消", "Revoke the approval"),
];
const CONNECTIONS: &[(&str, &str, &str)] = &[
    (
        "closed-ip-vpn",
        "閉域網（IP-VPN）",
        "Closed network (IP-VPN)",
    ),
    ("ipsec-ike-vpn", "IPsec + IKE VPN", "IPsec + IKE VPN"),
    ("tls-internet", "インターネット（TLS）", "Internet (TLS)"),
];
const BASES: &[(&str, &str, &str)] = &[
    ("commissioned", "県の委託", "Commissioned by the prefecture"),
    ("certified", "認定", "Certified"),
];
const ATTESTATIONS: &[(&str, &str, &str)] = &[
    (
        "members-trained",
        "利用者への研修実施（(1)）",
        "Members trained (1)",
    ),
    (
        "antivirus-current",
        "ウイルス対策ソフトの導入と更新（(5)）",
        "Anti-virus current (5)",
    ),
];
const MEDIA_KINDS: &[(&str, &str, &str)] = &[
    ("usb-memory", "USB メモリ", "USB memory"),
    ("optical-disc", "光ディスク", "Optical disc"),
    ("hard-disk", "ハードディスク", "Hard disk"),
    ("magnetic-tape", "磁気テープ", "Magnetic tape"),
    ("other", "その他", "Other"),
];
const MEDIA_METHODS: &[(&str, &str, &str)] = &[
    ("destroy", "物理的破壊（Destroy）", "Destroy"),
    (
        "purge",
        "パージ（Purge、理由が必要）",
        "Purge (needs a reason)",
    ),
    (
        "clear",
        "クリア（Clear、理由が必要）",
        "Clear (needs a reason)",
    ),
];
const DISPOSAL_METHODS: &[(&str, &str, &str)] = &[
    ("destroy", "物理的破壊", "Destroy"),
    ("purge", "パージ（理由が必要）", "Purge (needs a reason)"),
    ("clear", "クリア（理由が必要）", "Clear (needs a reason)"),
    ("shred", "シュレッダー（紙）", "Shred (paper)"),
    (
        "melt",
        "溶解（紙、証明書が必要）",
        "Melt (paper, needs a certificate)",
    ),
];
const SUBJECTS: &[(&str, &str, &str)] = &[("medium", "媒体", "A medium"), ("paper", "紙", "Paper")];
const ROLES: &[(&str, &str, &str)] = &[
    (
        "implementation-manager",
        "事業実施責任者",
        "Implementation manager",
    ),
    (
        "implementation-manager-deputy",
        "事業実施責任者（代理）",
        "Implementation manager (deputy)",
    ),
    ("operations-manager", "運用責任者", "Operations manager"),
    (
        "operations-manager-deputy",
        "運用責任者（代理）",
        "Operations manager (deputy)",
    ),
    (
        "system-operations-administrator",
        "システム運用管理者",
        "System operations administrator",
    ),
    ("operations-office", "運営事務局", "Operations office"),
    ("prefecture", "県職員", "Prefecture"),
    ("auditor", "監査人", "Auditor"),
];

fn provider_decides(r: Role) -> bool {
    mebyo_domain::provider::decides(r)
}
fn drills(r: Role) -> bool {
    Duty::RestoreDrill.allowed(r)
}
fn rotates_kek(r: Role) -> bool {
    Duty::KekRotation.allowed(r)
}

/// Every form of this module, in the order the dashboard shows them.
pub const FORMS: &[Form] = &[
    Form {
        id: "provider-application",
        panel: Panel::Providers,
        title: (
            "事業者の申請の受付（第2条第3項）",
            "Enter a provider's application (clause 2(3))",
        ),
        button: ("受け付ける", "Enter"),
        done: (
            "申請を受け付けました。県が承認を判断します。",
            "The application is entered; the prefecture decides on it.",
        ),
        api: "/api/v1/ops/providers",
        fields: &[
            text("provider", ("事業者 ID", "Provider id"), To::Str, true),
            text(
                "responsible",
                ("管理責任者（職員 ID）", "Responsible person (staff id)"),
                To::Str,
                true,
            ),
            pick(
                "connection",
                ("接続方式（第4.5条第3項）", "Connection (clause 4.5(3))"),
                CONNECTIONS,
            ),
            pick("basis", ("根拠", "Basis"), BASES),
        ],
        destructive: false,
        shown_to: mebyo_domain::provider::enters_applications,
        clause: mebyo_domain::clause!("P2(3)"),
    },
    Form {
        id: "provider-attestation",
        panel: Panel::Providers,
        title: (
            "事業者の届出の記録（第4.11条）",
            "Record a provider's attestation (clause 4.11)",
        ),
        button: ("記録する", "Record"),
        done: ("届出を記録しました。", "The attestation is recorded."),
        api: "/api/v1/ops/providers/{provider}/attestations",
        fields: &[
            text("provider", ("事業者 ID", "Provider id"), To::Path, true),
            pick("kind", ("内容", "What it attests"), ATTESTATIONS),
            when(
                "attested_on",
                ("届出日（日本時間）", "Attested on (JST)"),
                true,
            ),
            when(
                "valid_until",
                ("有効期限（日本時間）", "Valid until (JST)"),
                true,
            ),
        ],
        destructive: false,
        shown_to: mebyo_domain::provider::enters_attestations,
        clause: mebyo_domain::clause!("P4.11(1)"),
    },
    Form {
        id: "provider-decision",
        panel: Panel::Providers,
        title: (
            "事業者の承認・停止（第2条第3項）",
            "Decide on a provider (clause 2(3))",
        ),
        button: ("決定する", "Decide"),
        done: ("事業者について決定しました。", "The decision is recorded."),
        api: "/api/v1/ops/providers/{provider}/decisions",
        fields: &[
            text("provider", ("事業者 ID", "Provider id"), To::Path, true),
            pick("decision", ("決定", "Decision"), DECISIONS),
        ],
        destructive: true,
        shown_to: provider_decides,
        clause: mebyo_domain::clause!("P2(3)"),
    },
    Form {
        id: "issue-credential",
        panel: Panel::Credentials,
        title: (
            "接続情報の発行（第4.12条）",
            "Issue a credential (clause 4.12)",
        ),
        button: ("発行する", "Issue"),
        done: ("接続情報を発行しました。", "The credential is issued."),
        api: "/api/v1/ops/credentials",
        fields: &[
            text("provider", ("事業者 ID", "Provider id"), To::Str, true),
            text(
                "responsible",
                ("管理責任者（職員 ID）", "Responsible person (staff id)"),
                To::Str,
                true,
            ),
            text(
                "replaces",
                (
                    "置き換える接続情報 ID（任意）",
                    "Credential it replaces (optional)",
                ),
                To::OptStr,
                false,
            ),
        ],
        destructive: false,
        shown_to: mebyo_domain::credential::issues,
        clause: mebyo_domain::clause!("P4.12(1)"),
    },
    Form {
        id: "renew-credential",
        panel: Panel::Credentials,
        title: (
            "接続情報の更新（第4.12条）",
            "Renew a credential (clause 4.12)",
        ),
        button: ("更新する", "Renew"),
        done: ("接続情報を更新しました。", "The credential is renewed."),
        api: "/api/v1/ops/credentials/{credential}/renew",
        fields: &[CREDENTIAL],
        destructive: false,
        shown_to: mebyo_domain::credential::issues,
        clause: mebyo_domain::clause!("P4.12(1)"),
    },
    Form {
        id: "credential-loss",
        panel: Panel::Credentials,
        title: (
            "接続情報の紛失届（第4.12条）",
            "Report a credential lost (clause 4.12)",
        ),
        button: ("紛失として届け出る", "Report lost"),
        done: (
            "紛失を記録しました。この接続情報は直ちに使えません。",
            "Recorded as lost: the credential is refused from now on.",
        ),
        api: "/api/v1/ops/credentials/{credential}/loss",
        fields: &[CREDENTIAL],
        destructive: true,
        shown_to: mebyo_domain::credential::issues,
        clause: mebyo_domain::clause!("P4.12(2)"),
    },
    Form {
        id: "signing-key",
        panel: Panel::Credentials,
        title: (
            "署名鍵の登録（第4.12条）",
            "Register a signing key (clause 4.12)",
        ),
        button: ("登録する", "Register"),
        done: ("署名鍵を登録しました。", "The signing key is registered."),
        api: "/api/v1/ops/credentials/{credential}/signing-key",
        fields: &[
            CREDENTIAL,
            text(
                "public_key",
                ("ed25519 公開鍵（16進64桁）", "ed25519 public key (64 hex)"),
                To::Str,
                true,
            ),
        ],
        destructive: false,
        shown_to: mebyo_domain::signing_key::registers,
        clause: mebyo_domain::clause!("P4.12(1)"),
    },
    Form {
        id: "restore-drill",
        panel: Panel::Backups,
        title: ("復元訓練（第4.10条）", "Restore drill (clause 4.10)"),
        button: ("訓練を実行", "Run the drill"),
        done: ("復元訓練が完了しました。", "The restore drill is done."),
        api: "/api/v1/ops/backups/drill",
        fields: &[],
        destructive: false,
        shown_to: drills,
        clause: mebyo_domain::clause!("P4.10"),
    },
    Form {
        id: "kek-rotation",
        panel: Panel::Backups,
        title: (
            "鍵暗号化鍵の更新（第4.8条第1項）",
            "Rotate the key-encryption key (clause 4.8(1))",
        ),
        button: ("更新する", "Rotate"),
        done: (
            "鍵暗号化鍵を更新しました。",
            "The key-encryption key is rotated.",
        ),
        api: "/api/v1/ops/keys/kek-rotation",
        fields: &[],
        destructive: true,
        shown_to: rotates_kek,
        clause: mebyo_domain::clause!("P4.8(1)"),
    },
    Form {
        id: "erasure",
        panel: Panel::Backups,
        title: (
            "退会者データの消去（第4.9条）",
            "Erase a withdrawn person (clause 4.9)",
        ),
        button: ("消去する", "Erase"),
        done: (
            "消去しました。データ鍵は破棄されました。",
            "Erased: their data keys are destroyed.",
        ),
        api: "/api/v1/ops/persons/{person}/erasure",
        fields: &[text(
            "person",
            ("利用者の仮名 ID", "Person's pseudonymous id"),
            To::Path,
            true,
        )],
        destructive: true,
        shown_to: mebyo_domain::person::witnesses_erasure,
        clause: mebyo_domain::clause!("P4.9"),
    },
    Form {
        id: "audit-grant",
        panel: Panel::Chain,
        title: (
            "監査人への復号許可（第4.6条第2項）",
            "Let an auditor decrypt (clause 4.6(2))",
        ),
        button: ("許可する", "Grant"),
        done: (
            "監査人に復号を許可しました。",
            "The auditor may decrypt for the period.",
        ),
        api: "/api/v1/ops/audit-grants",
        fields: &[
            text(
                "auditor",
                ("監査人（職員 ID）", "Auditor (staff id)"),
                To::Str,
                true,
            ),
            Field {
                name: "days",
                label: ("日数（1〜365）", "Days (1 to 365)"),
                input: Input::Number(1, 365),
                to: To::Int,
                required: true,
            },
        ],
        destructive: true,
        shown_to: mebyo_domain::audit_grant::grants,
        clause: mebyo_domain::clause!("P4.6(2)"),
    },
    Form {
        id: "media-approval",
        panel: Panel::Operations,
        title: (
            "媒体への複写の承認（第4.7条）",
            "Approve a copy to a medium (clause 4.7)",
        ),
        button: ("承認する", "Approve"),
        done: ("媒体を台帳に記録しました。", "The medium is in the ledger."),
        api: "/api/v1/ops/media",
        fields: &[
            pick("kind", ("種類", "Kind"), MEDIA_KINDS),
            DIGEST,
            text(
                "custodian",
                ("管理者（職員 ID）", "Custodian (staff id)"),
                To::Str,
                true,
            ),
            text("storage", ("保管場所", "Where it is kept"), To::Str, true),
            text("purpose", ("目的", "Purpose"), To::Str, true),
        ],
        destructive: false,
        shown_to: mebyo_operations::media::keeper,
        clause: mebyo_domain::clause!("P4.7(1)"),
    },
    Form {
        id: "media-issue",
        panel: Panel::Operations,
        title: ("媒体の持出し（第4.7条）", "Hand out a medium (clause 4.7)"),
        button: ("記録する", "Record"),
        done: ("持出しを記録しました。", "The hand-out is recorded."),
        api: "/api/v1/ops/media/{media}/issue",
        fields: &[MEDIA, DIGEST],
        destructive: false,
        shown_to: mebyo_operations::media::keeper,
        clause: mebyo_domain::clause!("P4.7(2)"),
    },
    Form {
        id: "media-return",
        panel: Panel::Operations,
        title: ("媒体の返却（第4.7条）", "Take a medium back (clause 4.7)"),
        button: ("記録する", "Record"),
        done: ("返却を記録しました。", "The return is recorded."),
        api: "/api/v1/ops/media/{media}/return",
        fields: &[
            MEDIA,
            text("storage", ("保管場所", "Where it is kept"), To::Str, true),
        ],
        destructive: false,
        shown_to: mebyo_operations::media::keeper,
        clause: mebyo_domain::clause!("P4.7(2)"),
    },
    Form {
        id: "media-disposal",
        panel: Panel::Operations,
        title: ("媒体の廃棄（第4.9条）", "Dispose of a medium (clause 4.9)"),
        button: ("廃棄を記録", "Record the disposal"),
        done: ("廃棄を記録しました。", "The disposal is recorded."),
        api: "/api/v1/ops/media/{media}/disposal",
        fields: &[
            MEDIA,
            pick("method", ("方法", "Method"), MEDIA_METHODS),
            text(
                "reason",
                ("破壊しない理由", "Why not destroyed"),
                To::OptStr,
                false,
            ),
        ],
        destructive: true,
        shown_to: mebyo_operations::media::keeper,
        clause: mebyo_domain::clause!("P4.9(2)"),
    },
    Form {
        id: "disposal",
        panel: Panel::Operations,
        title: (
            "台帳外の廃棄（第4.9条）",
            "Dispose of something outside the ledger (clause 4.9)",
        ),
        button: ("廃棄を記録", "Record the disposal"),
        done: ("廃棄を記録しました。", "The disposal is recorded."),
        api: "/api/v1/ops/disposals",
        fields: &[
            pick("subject", ("対象", "What"), SUBJECTS),
            text("item", ("品目", "Item"), To::Str, true),
            pick("method", ("方法", "Method"), DISPOSAL_METHODS),
            text(
                "certificate",
                ("溶解証明書の番号", "Melting certificate"),
                To::OptStr,
                false,
            ),
            text(
                "reason",
                ("破壊しない理由", "Why not destroyed"),
                To::OptStr,
                false,
            ),
        ],
        destructive: true,
        shown_to: mebyo_operations::media::keeper,
        clause: mebyo_domain::clause!("P4.9(1)"),
    },
    Form {
        id: "maintenance",
        panel: Panel::Operations,
        title: ("保守の予告（第4.3条）", "Announce maintenance (clause 4.3)"),
        button: ("予告する", "Announce"),
        done: ("保守を予告しました。", "The maintenance is announced."),
        api: "/api/v1/ops/maintenance",
        fields: &[
            text("window", ("予定 ID", "Window id"), To::Str, true),
            when("starts_at", ("開始（日本時間）", "Starts (JST)"), true),
            when("ends_at", ("終了（日本時間）", "Ends (JST)"), true),
            Field {
                name: "affects",
                label: (
                    "影響（カンマ区切り: portal, app, provider-gateway）",
                    "Affects (comma-separated: portal, app, provider-gateway)",
                ),
                input: Input::Text(64),
                to: To::List,
                required: true,
            },
            Field {
                name: "summary",
                label: ("内容", "Summary"),
                input: Input::Text(200),
                to: To::Str,
                required: true,
            },
        ],
        destructive: false,
        shown_to: mebyo_operations::maintenance::planner,
        clause: mebyo_domain::clause!("P4.3"),
    },
    Form {
        id: "maintenance-cancel",
        panel: Panel::Operations,
        title: (
            "保守の取りやめ（第4.3条）",
            "Cancel maintenance (clause 4.3)",
        ),
        button: ("取りやめる", "Cancel it"),
        done: ("保守を取りやめました。", "The maintenance is cancelled."),
        api: "/api/v1/ops/maintenance/{window}/cancel",
        fields: &[text("window", ("予定 ID", "Window id"), To::Path, true)],
        destructive: true,
        shown_to: mebyo_operations::maintenance::planner,
        clause: mebyo_domain::clause!("P4.3"),
    },
    Form {
        id: "firewall-review",
        panel: Panel::Operations,
        title: (
            "ファイアウォールログの確認（第4.4条）",
            "Firewall log review (clause 4.4)",
        ),
        button: ("記録する", "Record"),
        done: ("確認を記録しました。", "The review is recorded."),
        api: "/api/v1/ops/firewall-reviews",
        fields: &[
            when(
                "from",
                ("確認した範囲の始まり（日本時間）", "Span from (JST)"),
                true,
            ),
            when("to", ("終わり（日本時間）", "Span to (JST)"), true),
            text(
                "incident",
                (
                    "見つけたインシデント ID（任意）",
                    "Incident found (optional)",
                ),
                To::OptStr,
                false,
            ),
            text(
                "reference",
                ("参照番号（任意）", "Reference (optional)"),
                To::OptStr,
                false,
            ),
        ],
        destructive: false,
        shown_to: mebyo_operations::monitoring::reviewer,
        clause: mebyo_domain::clause!("P4.4(3)"),
    },
    Form {
        id: "appointment",
        panel: Panel::Staff,
        title: (
            "職員の任命（第3.1条）",
            "Appoint a staff member (clause 3.1)",
        ),
        button: ("任命する", "Appoint"),
        done: ("任命を記録しました。", "The appointment is recorded."),
        api: "/api/v1/ops/staff/{staff}/appointments",
        fields: &[STAFF, pick("role", ("役割", "Role"), ROLES)],
        destructive: false,
        shown_to: Role::appoints_anyone,
        clause: mebyo_domain::clause!("P3.1"),
    },
    Form {
        id: "dismissal",
        panel: Panel::Staff,
        title: (
            "職員の解任（第3.1条）",
            "Dismiss a staff member from a role (clause 3.1)",
        ),
        button: ("解任する", "Dismiss"),
        done: ("解任を記録しました。", "The dismissal is recorded."),
        api: "/api/v1/ops/staff/{staff}/dismissals",
        fields: &[STAFF, pick("role", ("役割", "Role"), ROLES)],
        destructive: true,
        shown_to: Role::appoints_anyone,
        clause: mebyo_domain::clause!("P3.1"),
    },
    Form {
        id: "training",
        panel: Panel::Staff,
        title: ("研修の記録（第3.4条）", "Record training (clause 3.4)"),
        button: ("記録する", "Record"),
        done: ("研修を記録しました。", "The training is recorded."),
        api: "/api/v1/ops/staff/{staff}/training",
        fields: &[
            STAFF,
            when(
                "completed_at",
                ("受講日時（日本時間）", "Completed (JST)"),
                true,
            ),
            when(
                "valid_until",
                ("有効期限（日本時間）", "Valid until (JST)"),
                true,
            ),
        ],
        destructive: false,
        shown_to: Role::records_training,
        clause: mebyo_domain::clause!("P3.4"),
    },
];

/// The forms of `panel` a holder of `roles` is shown.
pub fn shown(panel: Panel, roles: &[Role]) -> impl Iterator<Item = &'static Form> + '_ {
    FORMS
        .iter()
        .filter(move |f| f.panel == panel && roles.iter().any(|r| (f.shown_to)(*r)))
}

/// The forms of `panel` for a holder of `roles`, each shut until opened.
pub fn panel_forms(l: Lang, csrf: &str, roles: &[Role], panel: Panel) -> Markup {
    html! {
        @for f in shown(panel, roles) {
            details.action-form {
                summary { (l.t(f.title.0, f.title.1)) }
                form.action method="post" action={"/ops/act/" (f.id)} id={(f.id) "-form"} {
                    input type="hidden" name="csrf" value=(csrf);
                    @for x in f.fields { (field_input(l, x)) }
                    @if f.destructive { (confirm_box(l)) }
                    button type="submit" { (l.t(f.button.0, f.button.1)) }
                }
            }
        }
    }
}

fn field_input(l: Lang, x: &Field) -> Markup {
    let label = l.t(x.label.0, x.label.1);
    html! {
        @match x.input {
            Input::Check => label { input type="checkbox" name=(x.name) value="yes"; " " (label) },
            Input::Select(options) => label { (label) " "
                select name=(x.name) required[x.required] {
                    @for (v, ja, en) in options { option value=(v) { (l.t(ja, en)) } }
                }
            },
            Input::Number(min, max) => label { (label) " "
                input type="number" name=(x.name) min=(min) max=(max) required[x.required];
            },
            Input::When => label { (label) " " input type="datetime-local" name=(x.name) required[x.required]; },
            Input::Text(max) => label { (label) " " input name=(x.name) maxlength=(max) required[x.required]; },
        }
    }
}

/// The endpoint's path and JSON body from a posted form. A required field left
/// empty is refused here, citing the form's clause; everything else is the
/// endpoint's to judge.
pub fn request(form: &Form, f: &[(String, String)]) -> ApiResult<(String, serde_json::Value)> {
    let mut path = form.api.to_string();
    let mut body = serde_json::Map::new();
    for x in form.fields {
        let v = field(f, x.name).trim();
        if x.required && v.is_empty() && x.to != To::Bool {
            let message = format!("fill in {}", x.name);
            return Err(ApiError::invalid(form.clause, message));
        }
        let json = match x.to {
            To::Path => {
                path = path.replace(&format!("{{{}}}", x.name), &crate::path_segment(v));
                continue;
            }
            To::OptStr if v.is_empty() => continue,
            To::Str | To::OptStr => serde_json::Value::from(v),
            To::Bool => serde_json::Value::from(v == "yes"),
            To::List => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(serde_json::Value::from)
                .collect(),
            To::Int => match v.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => {
                    let message = format!("{} must be a whole number", x.name);
                    return Err(ApiError::invalid(form.clause, message));
                }
            },
        };
        body.insert(x.name.to_string(), json);
    }
    Ok((path, serde_json::Value::Object(body)))
}

async fn act(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let l = Lang::from_headers(&headers);
    let form = FORMS
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(ApiError::not_found)
        .page(l, "/ops")?;
    let work = async {
        let f = fields(&body)?;
        let a = posted(&st, &headers, &f)?;
        if form.destructive {
            confirmed(&f)?;
        }
        let (path, json) = request(form, &f)?;
        let r = send(&st, &headers, field(&f, "csrf"), &path, &json).await?;
        Ok::<_, ApiError>((a, r))
    };
    let (a, r) = work.await.page(l, "/ops")?;
    Ok(done_page(l, &a, l.t(form.done.0, form.done.1), &r))
}

/// Sends the endpoint's request through the server's own routes, as the signed-in
/// browser: its cookie, and the CSRF token the form carried (already checked
/// against the session) in the header the endpoints read.
async fn send(
    st: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    path: &str,
    json: &serde_json::Value,
) -> ApiResult<Recorded> {
    use tower::ServiceExt;
    let mut req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", csrf)
        .body(Body::from(json.to_string()))
        .map_err(|_| ApiError::internal())?;
    for name in [header::COOKIE, header::ACCEPT_LANGUAGE] {
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    let Ok(res) = crate::routes().with_state(st.clone()).oneshot(req).await;
    let status = res.status();
    // The endpoints' answers are small JSON documents.
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::internal())?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|_| ApiError::internal());
    }
    match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
        Ok(e) => Err(ApiError {
            status,
            body: e.error,
            retry_after: None,
        }),
        Err(_) => Err(ApiError::internal()),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/ops/act/{form}", post(act))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The request body schema of `POST path` in the served OpenAPI document.
    fn body_schema(doc: &Value, path: &str) -> Option<Value> {
        let op = &doc["paths"][path]["post"];
        assert!(op.is_object(), "{path}: no POST in the OpenAPI document");
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let name = schema["$ref"].as_str()?.rsplit('/').next()?;
        Some(doc["components"]["schemas"][name].clone())
    }

    /// Issue 15 §2: every form becomes a documented endpoint's request. Its path
    /// fields are the path's parameters, its body fields the schema's
    /// properties, and every property the schema requires is asked for.
    #[test]
    fn p4_6_2_each_form_is_an_endpoint_of_the_api() {
        let doc = crate::openapi::document();
        for form in FORMS {
            let in_path: Vec<&str> = form
                .fields
                .iter()
                .filter(|x| x.to == To::Path)
                .map(|x| x.name)
                .collect();
            let params: Vec<&str> = form
                .api
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(in_path, params, "{}", form.id);
            let in_body: Vec<&str> = form
                .fields
                .iter()
                .filter(|x| x.to != To::Path)
                .map(|x| x.name)
                .collect();
            match body_schema(&doc, form.api) {
                None => assert!(
                    in_body.is_empty(),
                    "{}: the endpoint takes no body",
                    form.id
                ),
                Some(schema) => {
                    let props = schema["properties"].as_object().expect("properties");
                    for name in &in_body {
                        assert!(
                            props.contains_key(*name),
                            "{}: {name} is not in the schema",
                            form.id
                        );
                    }
                    for name in schema["required"].as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap();
                        assert!(
                            in_body.contains(&name),
                            "{}: the form does not ask for {name}",
                            form.id
                        );
                    }
                }
            }
            assert!(
                FORMS.iter().filter(|f| f.id == form.id).count() == 1,
                "{}",
                form.id
            );
        }
    }

    fn form(id: &str) -> &'static Form {
        FORMS.iter().find(|f| f.id == id).unwrap()
    }

    fn posted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(id: &str, pairs: &[(&str, &str)], expect: Result<(&str, Value), &str>) {
        let got = request(form(id), &posted(pairs));
        match (got, expect) {
            (Ok((path, body)), Ok((want_path, want_body))) => {
                assert_eq!(path, want_path);
                assert_eq!(body, want_body);
            }
            (Err(e), Err(clause)) => assert_eq!(e.body.clause, clause, "{}", e.body.message),
            (got, want) => panic!("{id}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn p4_12_a_form_becomes_its_endpoints_path_and_body() {
        check(
            "renew-credential",
            &[("credential", " cred-01 ")],
            Ok(("/api/v1/ops/credentials/cred-01/renew", json!({}))),
        );
        // An id cannot walk out of its segment into another endpoint.
        check(
            "renew-credential",
            &[("credential", "../backups")],
            Ok(("/api/v1/ops/credentials/%2E%2E%2Fbackups/renew", json!({}))),
        );
        check(
            "issue-credential",
            &[
                ("provider", "prov-1"),
                ("responsible", "po-0001"),
                ("replaces", ""),
            ],
            Ok((
                "/api/v1/ops/credentials",
                json!({"provider": "prov-1", "responsible": "po-0001"}),
            )),
        );
        check(
            "audit-grant",
            &[("auditor", "aud-0001"), ("days", "7")],
            Ok((
                "/api/v1/ops/audit-grants",
                json!({"auditor": "aud-0001", "days": 7}),
            )),
        );
        check(
            "maintenance",
            &[
                ("window", "mw-1"),
                ("starts_at", "2027-01-05T01:00"),
                ("ends_at", "2027-01-05T03:00"),
                ("affects", "portal, app,"),
                ("summary", "OS"),
            ],
            Ok((
                "/api/v1/ops/maintenance",
                json!({"window": "mw-1", "starts_at": "2027-01-05T01:00", "ends_at": "2027-01-05T03:00", "affects": ["portal", "app"], "summary": "OS"}),
            )),
        );
    }

    #[test]
    fn p4_12_a_form_missing_what_it_needs_is_refused_with_its_clause() {
        check("renew-credential", &[], Err("P4.12(1)"));
        check(
            "audit-grant",
            &[("auditor", "aud-0001"), ("days", "a week")],
            Err("P4.6(2)"),
        );
        check("erasure", &[("person", "  ")], Err("P4.9"));
    }

    /// Issue 15 §2: a form is shown to exactly the roles its decider accepts.
    #[test]
    fn p3_1_forms_are_shown_by_the_deciders_rules() {
        let ids = |roles: &[Role]| -> Vec<&str> {
            shown(Panel::Credentials, roles).map(|f| f.id).collect()
        };
        assert_eq!(
            ids(&[Role::OperationsOffice]),
            [
                "issue-credential",
                "renew-credential",
                "credential-loss",
                "signing-key"
            ]
        );
        assert!(ids(&[Role::Auditor]).is_empty());
        let ops = |roles: &[Role]| -> Vec<&str> {
            shown(Panel::Operations, roles).map(|f| f.id).collect()
        };
        assert!(ops(&[Role::SystemOperationsAdministrator]).contains(&"media-disposal"));
        assert_eq!(
            ops(&[Role::OperationsManager(mebyo_domain::staff::Rank::Deputy)]),
            ["maintenance", "maintenance-cancel"]
        );
        assert_eq!(
            shown(Panel::Backups, &[Role::SystemOperationsAdministrator])
                .map(|f| f.id)
                .collect::<Vec<_>>(),
            ["restore-drill", "kek-rotation", "erasure"]
        );
        assert_eq!(
            shown(Panel::Chain, &[Role::BusinessAdministrator])
                .map(|f| f.id)
                .collect::<Vec<_>>(),
            ["audit-grant"]
        );
        assert!(shown(Panel::Chain, &[Role::Auditor]).next().is_none());
    }
}
