//! Providers' lifecycle and connection information on the running server (issue
//! 15 §1): a paper application entered by the office and the attestations that
//! come with it (P2(3), P4.11), the prefecture's decisions on a provider (approve, reject, suspend,
//! reinstate, revoke; P2(3)) and a credential's renewal or loss report (P4.12).
//! Who may is the provider and credential deciders' rule; a loss report takes
//! effect on every interface at the next request, as a revocation does (P4.13),
//! since each reads the credential from the same platform.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mebyo_domain::credential::{CredentialCommand, Holder};
use mebyo_domain::provider::{AttestationKind, Basis, ConnectionClass, ProviderCommand};
use mebyo_domain::{ProviderId, StaffId};
use mebyo_platform::signing_keys;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, outcome};
use crate::ops_api::{Recorded, credential_id, recorded, staff_actor};
use crate::svc;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `approve`, `reject`, `suspend`, `reinstate` or `revoke`.
    pub decision: String,
}

fn decision(s: &str) -> ApiResult<ProviderCommand> {
    Ok(match s.trim() {
        "approve" => ProviderCommand::Approve,
        "reject" => ProviderCommand::Reject,
        "suspend" => ProviderCommand::Suspend,
        "reinstate" => ProviderCommand::Reinstate,
        "revoke" => ProviderCommand::Revoke,
        _ => {
            return Err(ApiError::invalid(
                mebyo_domain::clause!("P2(3)"),
                "decision must be approve, reject, suspend, reinstate or revoke",
            ));
        }
    })
}

/// Runs a decided command and answers where its event landed.
pub(crate) async fn answered<T>(
    work: impl std::future::Future<Output = ApiResult<T>>,
) -> ApiResult<Json<Recorded>> {
    Ok(Json(recorded(work, |_| Vec::new()).await?.1))
}

#[utoipa::path(post, path = "/api/v1/ops/providers/{provider}/decisions",
    params(("provider" = String, Path, description = "provider id, e.g. clinic-a-…")),
    request_body = DecisionInput,
    responses((status = 200, body = Recorded, description = "Decided; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the prefecture, training lapsed, not allowed from the provider's state, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such provider", body = crate::error::ErrorEnvelope),
        (status = 409, body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "The prefecture's decision on a provider's application or standing (P2(3)): approve or reject an application, suspend, reinstate, revoke. No access before approval; a suspended provider is refused on every interface.")]
pub async fn decide_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    JsonBody(input): JsonBody<DecisionInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let provider = ProviderId::new(&provider).map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P2(3)"), "provider id is malformed")
    })?;
    let cmd = decision(&input.decision)?;
    answered(async { outcome(st.platform.provider(&actor, &provider, cmd).await) }).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    /// The provider's id, e.g. `clinic-b` (letters, digits and `-`).
    pub provider: String,
    /// Staff id of the provider's responsible person, who will hold its
    /// connection information (P4.12(1)).
    pub responsible: String,
    /// `closed-ip-vpn`, `ipsec-ike-vpn` or `tls-internet` (P4.5(3)).
    pub connection: String,
    /// `commissioned` or `certified` (P2(3)).
    pub basis: String,
}

fn connection(s: &str) -> ApiResult<ConnectionClass> {
    Ok(match s.trim() {
        "closed-ip-vpn" => ConnectionClass::ClosedIpVpn,
        "ipsec-ike-vpn" => ConnectionClass::IpsecIkeVpn,
        "tls-internet" => ConnectionClass::TlsInternet,
        _ => {
            return Err(ApiError::invalid(
                mebyo_domain::clause!("P4.5(3)"),
                "connection must be closed-ip-vpn, ipsec-ike-vpn or tls-internet",
            ));
        }
    })
}

fn basis(s: &str) -> ApiResult<Basis> {
    match s.trim() {
        "commissioned" => Ok(Basis::Commissioned),
        "certified" => Ok(Basis::Certified),
        _ => Err(ApiError::invalid(
            mebyo_domain::clause!("P2(3)"),
            "basis must be commissioned or certified",
        )),
    }
}

fn provider_id(s: &str) -> ApiResult<ProviderId> {
    ProviderId::new(s.trim())
        .map_err(|_| ApiError::invalid(mebyo_domain::clause!("P2(3)"), "provider id is malformed"))
}

#[utoipa::path(post, path = "/api/v1/ops/providers", request_body = ApplicationInput,
    responses((status = 201, body = Recorded, description = "The application is recorded; the prefecture decides on it"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the office or the prefecture, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 409, description = "That provider has applied already or is approved", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "A provider's paper application, entered by the office or the prefecture (P2(3)): the provider, its responsible person, how it connects (P4.5(3)) and on what basis it may apply.")]
pub async fn apply_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<ApplicationInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let provider = provider_id(&input.provider)?;
    let responsible = StaffId::new(input.responsible.trim()).map_err(|_| {
        ApiError::invalid(mebyo_domain::clause!("P2(3)"), "responsible is malformed")
    })?;
    let cmd = ProviderCommand::Apply {
        provider: provider.clone(),
        responsible,
        connection: connection(&input.connection)?,
        basis: basis(&input.basis)?,
    };
    let work = async { outcome(st.platform.provider(&actor, &provider, cmd).await) };
    let made = |_: &Vec<_>| vec![provider.to_string()];
    Ok((StatusCode::CREATED, Json(recorded(work, made).await?.1)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationInput {
    /// `members-trained` (P4.11(1)) or `antivirus-current` (P4.11(5)).
    pub kind: String,
    /// RFC 3339: the date of the attestation, not after now.
    pub attested_on: String,
    /// RFC 3339: when it must be renewed, after `attested_on`.
    pub valid_until: String,
}

#[utoipa::path(post, path = "/api/v1/ops/providers/{provider}/attestations",
    params(("provider" = String, Path, description = "provider id")),
    request_body = AttestationInput,
    responses((status = 201, body = Recorded, description = "The attestation is recorded"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the prefecture, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such provider", body = crate::error::ErrorEnvelope),
        (status = 409, body = crate::error::ErrorEnvelope),
        (status = 422, description = "A kind or date that does not parse, or dates out of order", body = crate::error::ErrorEnvelope)),
    description = "A paper attestation received with a provider's application, entered by the prefecture: its members are trained (P4.11(1)), or every terminal has current anti-virus definitions (P4.11(5)). A provider attests over its own connection otherwise.")]
pub async fn attest_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    JsonBody(input): JsonBody<AttestationInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let provider = provider_id(&provider)?;
    let (kind, clause) = match input.kind.trim() {
        "members-trained" => (
            AttestationKind::MembersTrained,
            mebyo_domain::clause!("P4.11(1)"),
        ),
        "antivirus-current" => (
            AttestationKind::AntivirusCurrent,
            mebyo_domain::clause!("P4.11(5)"),
        ),
        _ => {
            return Err(ApiError::invalid(
                mebyo_domain::clause!("P4.11(1)"),
                "kind must be members-trained or antivirus-current",
            ));
        }
    };
    let cmd = ProviderCommand::Attest {
        kind,
        attested_on: crate::ops_api::time_field(&input.attested_on, clause, "attested_on")?,
        valid_until: crate::ops_api::time_field(&input.valid_until, clause, "valid_until")?,
    };
    let work = async { outcome(st.platform.provider(&actor, &provider, cmd).await) };
    Ok((
        StatusCode::CREATED,
        Json(recorded(work, |_| Vec::new()).await?.1),
    ))
}

async fn credential_command(
    st: &AppState,
    headers: &HeaderMap,
    credential: &str,
    cmd: CredentialCommand,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(st, headers, svc::csrf_header(headers))?;
    let credential = credential_id(credential)?;
    answered(async { outcome(st.platform.credential(&actor, &credential, cmd).await) }).await
}

#[utoipa::path(post, path = "/api/v1/ops/credentials/{credential}/renew",
    params(("credential" = String, Path, description = "credential id")),
    responses((status = 200, body = Recorded, description = "Renewed for another interval; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not a role that renews, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such credential", body = crate::error::ErrorEnvelope),
        (status = 409, description = "Lost or revoked", body = crate::error::ErrorEnvelope)),
    description = "Renew connection information at its fixed interval (P4.12(1)).")]
pub async fn renew_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(credential): Path<String>,
) -> ApiResult<Json<Recorded>> {
    credential_command(&st, &headers, &credential, CredentialCommand::Renew).await
}

#[utoipa::path(post, path = "/api/v1/ops/credentials/{credential}/loss",
    params(("credential" = String, Path, description = "credential id")),
    responses((status = 200, body = Recorded, description = "Reported lost: refused on every interface from the next request; the event"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not a role that takes loss reports, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such credential", body = crate::error::ErrorEnvelope),
        (status = 409, description = "Already lost or revoked", body = crate::error::ErrorEnvelope)),
    description = "A loss of connection information, reported promptly (P4.12(2)): it is revoked at once, and a new one may be issued to replace it.")]
pub async fn loss_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(credential): Path<String>,
) -> ApiResult<Json<Recorded>> {
    credential_command(&st, &headers, &credential, CredentialCommand::ReportLoss).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// The approved provider the connection information is for.
    pub provider: String,
    /// The provider's responsible person, who receives it (P4.12(1)).
    pub responsible: String,
    /// The credential this one replaces (after a loss report, P4.12(2)).
    #[serde(default)]
    pub replaces: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/ops/credentials", request_body = IssueInput,
    responses((status = 201, body = Recorded, description = "Issued; `made` holds the new credential id"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the prefecture or its office, training lapsed, the provider not approved, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such provider or replaced credential", body = crate::error::ErrorEnvelope),
        (status = 409, body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Issue connection information to an approved provider's responsible person (P4.12(1)), optionally replacing a lost one (P4.12(2)). Its id is fresh.")]
pub async fn issue_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<IssueInput>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let bad = |what: &str| {
        ApiError::invalid(
            mebyo_domain::clause!("P4.12(1)"),
            format!("{what} is malformed"),
        )
    };
    let provider = ProviderId::new(&input.provider).map_err(|_| bad("provider id"))?;
    let responsible = StaffId::new(&input.responsible).map_err(|_| bad("responsible"))?;
    let replaces = input.replaces.as_deref().map(credential_id).transpose()?;
    let credential = credential_id(&st.platform.new_id("cred"))?;
    let cmd = CredentialCommand::Issue {
        credential: credential.clone(),
        holder: Holder::Provider {
            provider,
            responsible,
        },
        replaces,
    };
    let work = async { outcome(st.platform.credential(&actor, &credential, cmd).await) };
    let made = |_: &Vec<_>| vec![credential.to_string()];
    Ok((StatusCode::CREATED, Json(recorded(work, made).await?.1)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyInput {
    /// The provider's ed25519 public key, 64 hex digits (what
    /// `mebyo-provider keygen` prints).
    pub public_key: String,
}

#[utoipa::path(post, path = "/api/v1/ops/credentials/{credential}/signing-key",
    params(("credential" = String, Path, description = "credential id")),
    request_body = SigningKeyInput,
    responses((status = 200, body = Recorded, description = "Registered; bus requests signed with it are accepted from the next one"),
        (status = 401, body = crate::error::ErrorEnvelope),
        (status = 403, description = "Not the prefecture or its office, training lapsed, not valid connection information, or no CSRF token with the cookie", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such credential", body = crate::error::ErrorEnvelope),
        (status = 409, description = "That key is already the registered one", body = crate::error::ErrorEnvelope),
        (status = 422, body = crate::error::ErrorEnvelope)),
    description = "Register (or replace) the ed25519 key a provider signs bus requests with, against one of its valid connection credentials (P4.12(1)).")]
pub async fn signing_key_api(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(credential): Path<String>,
    JsonBody(input): JsonBody<SigningKeyInput>,
) -> ApiResult<Json<Recorded>> {
    let actor = staff_actor(&st, &headers, svc::csrf_header(&headers))?;
    let credential = credential_id(&credential)?;
    let key = signing_keys::parse_public_key_hex(&input.public_key)
        .map_err(|e| ApiError::invalid(mebyo_domain::clause!("P4.12(1)"), e))?;
    answered(async {
        outcome(signing_keys::register(&st.platform, &actor, &credential, &key).await)
    })
    .await
}
