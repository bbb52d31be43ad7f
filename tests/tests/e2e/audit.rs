//! The audit log against someone who can write the database file: the
//! database refuses UPDATE and DELETE; with its triggers dropped, altering
//! any entry, deleting the last ones, or deleting one and re-chaining the
//! rest are each caught — online against the latest signed checkpoint, and
//! offline from an export.

use keyong_client::{Client, verify_audit_export, walkthrough};
use keyong_crypto::audit::entry_hash;
use keyong_tests::TestServer;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_catches_alteration_truncation_and_rechaining() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.5), &mut |_| {}).await.unwrap();
    let authority = Client::new(&server.base).as_user(&outcome.actors.authority);
    let v = authority.verify_audit().await.unwrap();
    assert!(v.ok && v.entries > 20, "{v:?}");
    let checkpoint = v.checkpoint.clone().expect("filings wrote checkpoints");
    assert!(checkpoint.entries <= v.entries);
    let export = authority.export_audit().await.unwrap();
    assert_eq!(verify_audit_export(&export, &v.platform_public_key_hex).first_bad_seq, None);
    assert!(export.checkpoints.len() >= 3, "one per filing at least: {}", export.checkpoints.len());

    // The database itself refuses to change the log.
    let db = server.db().await;
    for sql in [
        "UPDATE audit SET actor = 'x' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 2",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = sqlx::query(sql).execute(&db).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // An attacker with the file drops the triggers first.
    for drop in [
        "DROP TRIGGER audit_no_update",
        "DROP TRIGGER audit_no_delete",
        "DROP TRIGGER audit_checkpoints_no_update",
        "DROP TRIGGER audit_checkpoints_no_delete",
    ] {
        sqlx::query(drop).execute(&db).await.unwrap();
    }

    // Altering any entry.
    for seq in 1..=v.entries as i64 {
        sqlx::query("UPDATE audit SET detail = detail || ' ' WHERE seq = ?").bind(seq).execute(&db).await.unwrap();
        let bad = authority.verify_audit().await.unwrap();
        assert!(!bad.ok, "altering entry {seq} must break the chain");
        assert_eq!(bad.first_bad_seq, Some(seq));
        assert!(bad.checkpoint_signature_hex.is_none(), "no checkpoint is signed over a broken chain");
        sqlx::query("UPDATE audit SET detail = substr(detail, 1, length(detail) - 1) WHERE seq = ?")
            .bind(seq)
            .execute(&db)
            .await
            .unwrap();
    }
    assert!(authority.verify_audit().await.unwrap().ok);

    // Deleting the last entries the latest checkpoint covers: the chain alone still verifies.
    let cp = checkpoint.entries as i64;
    let saved = sqlx::query("SELECT * FROM audit WHERE seq >= ? ORDER BY seq").bind(cp).fetch_all(&db).await.unwrap();
    sqlx::query("DELETE FROM audit WHERE seq >= ?").bind(cp).execute(&db).await.unwrap();
    let bad = authority.verify_audit().await.unwrap();
    assert!(!bad.ok, "truncation must be caught");
    assert_eq!(bad.first_bad_seq, Some(cp));
    for r in &saved {
        sqlx::query("INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(r.get::<i64, _>("seq"))
            .bind(r.get::<String, _>("at"))
            .bind(r.get::<String, _>("actor"))
            .bind(r.get::<String, _>("action"))
            .bind(r.get::<String, _>("subject"))
            .bind(r.get::<String, _>("detail"))
            .bind(r.get::<String, _>("prev_hash"))
            .bind(r.get::<String, _>("hash"))
            .execute(&db)
            .await
            .unwrap();
    }
    assert!(authority.verify_audit().await.unwrap().ok);

    // Deleting entry 3 and re-chaining everything after it.
    sqlx::query("DELETE FROM audit WHERE seq = 3").execute(&db).await.unwrap();
    let rows = sqlx::query("SELECT * FROM audit WHERE seq > 3 ORDER BY seq").fetch_all(&db).await.unwrap();
    let mut prev: String = sqlx::query_scalar("SELECT hash FROM audit WHERE seq = 2").fetch_one(&db).await.unwrap();
    for r in rows {
        let old: i64 = r.get("seq");
        let (at, actor, action, subject, detail): (String, String, String, String, String) =
            (r.get("at"), r.get("actor"), r.get("action"), r.get("subject"), r.get("detail"));
        let hash = entry_hash(&prev, old - 1, &at, &actor, &action, &subject, &detail);
        sqlx::query("UPDATE audit SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(old - 1)
            .bind(&prev)
            .bind(&hash)
            .bind(old)
            .execute(&db)
            .await
            .unwrap();
        prev = hash;
    }
    let bad = authority.verify_audit().await.unwrap();
    assert!(!bad.ok, "a re-chained log must not verify against the signed checkpoint");
    let rewritten = authority.export_audit().await.unwrap();
    let offline = verify_audit_export(&rewritten, &v.platform_public_key_hex);
    assert!(offline.first_bad_seq.is_some(), "nor offline");
    // An export verified against the key its holder obtained independently:
    // a forged key in the file changes nothing.
    let mut forged = export.clone();
    forged.platform_public_key_hex = keyong_crypto::SigningKey::generate().unwrap().public_key_hex();
    assert_eq!(verify_audit_export(&forged, &v.platform_public_key_hex).first_bad_seq, None);
}
