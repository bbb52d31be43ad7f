use keyong_client::{Client, walkthrough};
use keyong_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_fails_after_any_stored_entry_is_altered() {
    let server = TestServer::start().await;
    let outcome = walkthrough::run(server.inputs(0.5), &mut |_| {}).await.unwrap();
    let authority = Client::new(&server.base).as_user(&outcome.actors.authority);
    let v = authority.verify_audit().await.unwrap();
    assert!(v.ok && v.entries > 20, "{v:?}");
    let db = server.db().await;
    for seq in 1..=v.entries as i64 {
        for (sql, restore) in [
            (
                "UPDATE audit SET detail = detail || ' ' WHERE seq = ?",
                "UPDATE audit SET detail = substr(detail, 1, length(detail) - 1) WHERE seq = ?",
            ),
            (
                "UPDATE audit SET actor = actor || 'x' WHERE seq = ?",
                "UPDATE audit SET actor = substr(actor, 1, length(actor) - 1) WHERE seq = ?",
            ),
        ] {
            sqlx::query(sql).bind(seq).execute(&db).await.unwrap();
            let bad = authority.verify_audit().await.unwrap();
            assert!(!bad.ok, "altering entry {seq} must break the chain");
            assert_eq!(bad.first_bad_seq, Some(seq));
            assert!(bad.checkpoint_signature_hex.is_none(), "no checkpoint is signed over a broken chain");
            sqlx::query(restore).bind(seq).execute(&db).await.unwrap();
        }
    }
    assert!(authority.verify_audit().await.unwrap().ok);
    // Deleting an entry breaks it too.
    sqlx::query("DELETE FROM audit WHERE seq = 3").execute(&db).await.unwrap();
    assert_eq!(authority.verify_audit().await.unwrap().first_bad_seq, Some(4));
}
