//! The FEU client against the FEU stand-in over real HTTP: the token (refresh, the
//! password fallback, kept for the run), FEU's idempotency token across a lost answer,
//! and the answers that must fail a call: 500s, garbage, a PDF that is not base64.

use chrono::NaiveDate;
use run_job::jobs::invoices::feu::{Comprobante, Feu, FeuError, FeuSettings};
use run_job::sandbox::Sandbox;
use run_job::sandbox::feu::{self as standin, FeuScript};

use crate::helpers::stand_ins;

async fn feu(extra: &[(&str, &str)]) -> (Sandbox, Feu) {
    let sb = stand_ins().await;
    let auth = format!("{}/auth/token", sb.base_url);
    let base = sb.base_url.clone();
    let mut vars: Vec<(String, String)> = vec![
        ("FEU_AUTH_URL".into(), auth),
        ("FEU_API_BASE_URL".into(), base),
        ("FEU_REFRESH_TOKEN".into(), standin::REFRESH_TOKEN.into()),
        ("FEU_USERNAME".into(), standin::USERNAME.into()),
        ("FEU_PASSWORD".into(), standin::PASSWORD.into()),
        ("FEU_EMISOR_RUT".into(), standin::EMISOR.into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        if !v.is_empty() {
            vars.push((k.to_string(), v.to_string()));
        }
    }
    let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let settings = FeuSettings::from_env(&env).unwrap();
    (sb, Feu::new(settings).unwrap())
}

fn ticket(external: &str) -> Comprobante {
    Comprobante {
        id_externo: external.into(),
        moneda: "UYU".into(),
        fecha: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        concepto: "Comisión por intermediación (comprador) - Orden 0000abcd".into(),
        precio: "160.08".parse().unwrap(),
        adenda: "Evento: Cuarteto de Nos | Orden: 0000abcd".into(),
    }
}

#[tokio::test]
async fn a_document_and_its_pdf_with_one_token_for_the_run() {
    let (sb, feu) = feu(&[]).await;
    let a = feu.create(&ticket("revendiste:o1:buyer")).await.unwrap();
    let b = feu.create(&ticket("revendiste:o2:buyer")).await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!((a.serie.as_str(), a.numero), ("A", a.id));
    assert_eq!(a.raw["cae_vencimiento"], "2027-12-31");
    let pdf = feu.pdf(a.id).await.unwrap();
    assert_eq!(pdf, standin::pdf_bytes(a.id as u64));
    assert_eq!(
        sb.feu_auth_requests(),
        ["refresh_token"],
        "one token, reused"
    );
    let docs = sb.feu_documents();
    assert_eq!(docs.len(), 2);
    let sent = &docs[0].payload;
    assert_eq!(sent["tipo_comprobante"], 101);
    assert_eq!(sent["cod_montos_brutos"], 1);
    assert_eq!(sent["fecha_comprobante"], "2026-11-30");
    assert_eq!(sent["items"][0]["precio"], 160.08);
    assert_eq!(sent["items"][0]["indicador_facturacion"], 3);
}

#[tokio::test]
async fn a_refused_refresh_token_falls_back_to_the_password() {
    let (sb, feu) = feu(&[]).await;
    sb.script_feu(FeuScript {
        refresh_revoked: true,
        ..FeuScript::default()
    });
    feu.create(&ticket("revendiste:o1:buyer")).await.unwrap();
    assert_eq!(sb.feu_auth_requests(), ["refresh_token", "password"]);
}

#[tokio::test]
async fn wrong_credentials_are_rejected_without_leaking_them() {
    let (sb, feu) = feu(&[("FEU_REFRESH_TOKEN", ""), ("FEU_PASSWORD", "wrong")]).await;
    let e = feu
        .create(&ticket("revendiste:o1:buyer"))
        .await
        .unwrap_err();
    assert!(matches!(e, FeuError::Refused(_)), "{e:?}");
    assert!(!e.to_string().contains("wrong"), "{e}");
    assert!(sb.feu_documents().is_empty());
}

/// However the login endpoint refuses (OAuth's 400 `invalid_grant`, a 401 or 403 with
/// no JSON body), it is a refusal of our credentials, never a fault of the document: the
/// invoices job then leaves its rows claimable instead of failing them.
#[tokio::test]
async fn every_kind_of_login_refusal_is_a_refusal_of_the_credentials() {
    for (status, body) in [
        (400, r#"{"error":"invalid_grant"}"#),
        (401, ""),
        (403, "<html>forbidden</html>"),
    ] {
        let (sb, feu) = feu(&[]).await;
        sb.script_feu(FeuScript {
            refuse_logins: Some((status, body.to_string())),
            ..FeuScript::default()
        });
        let e = feu
            .create(&ticket("revendiste:o1:buyer"))
            .await
            .unwrap_err();
        assert!(matches!(e, FeuError::Refused(_)), "{status}: {e:?}");
        assert_eq!(
            sb.feu_auth_requests(),
            ["refresh_token", "password"],
            "{status}"
        );
    }
}

/// The answer to a creation is lost (FEU created the document, then a 500): asking
/// again with the same `id_externo` returns that document, and FEU holds one.
#[tokio::test]
async fn a_lost_answer_never_makes_a_second_fiscal_document() {
    let (sb, feu) = feu(&[]).await;
    sb.script_feu(FeuScript {
        create_lose_answer_next: 1,
        ..FeuScript::default()
    });
    let created = feu.create(&ticket("revendiste:o1:buyer")).await.unwrap();
    let again = feu.create(&ticket("revendiste:o1:buyer")).await.unwrap();
    assert_eq!(created.id, again.id);
    assert_eq!(sb.feu_documents().len(), 1);
}

#[tokio::test]
async fn garbage_500s_and_a_pdf_that_is_not_base64_fail_the_call() {
    let (sb, feu) = feu(&[]).await;
    sb.script_feu(FeuScript {
        create_garbage_next: 3,
        ..FeuScript::default()
    });
    let e = feu
        .create(&ticket("revendiste:o1:buyer"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FeuError::Transient(m) if m.contains("not JSON")),
        "{e:?}"
    );

    sb.script_feu(FeuScript {
        create_fail_next: 3,
        ..FeuScript::default()
    });
    let e = feu
        .create(&ticket("revendiste:o1:buyer"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FeuError::Transient(m) if m.contains("500")),
        "{e:?}"
    );
    assert!(sb.feu_documents().is_empty(), "nothing was created");

    sb.script_feu(FeuScript {
        pdf_not_base64_next: 3,
        ..FeuScript::default()
    });
    let created = feu.create(&ticket("revendiste:o1:buyer")).await.unwrap();
    let e = feu.pdf(created.id).await.unwrap_err();
    assert_eq!(e, FeuError::Transient("FEU pdf data is not base64".into()));

    // Base64 of a page that is not a PDF is never attached to a customer's email.
    sb.script_feu(FeuScript {
        pdf_not_a_pdf_next: 3,
        ..FeuScript::default()
    });
    let e = feu.pdf(created.id).await.unwrap_err();
    assert_eq!(
        e,
        FeuError::Transient("FEU pdf data is not a PDF (no %PDF- header)".into())
    );
}
