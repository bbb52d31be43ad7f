-- keyong metadata store, SQLite dialect. Applied idempotently at start-up;
-- `PRAGMA user_version` records the schema version (see `SCHEMA_VERSION`).
CREATE TABLE IF NOT EXISTS orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    public_key TEXT,
    -- Who created the account, and (reviewers only) which authority user
    -- confirmed it: a reviewer account takes effect only once confirmed.
    created_by TEXT NOT NULL,
    confirmed_by TEXT,
    -- Set when the user's organisation exits: the token stops working.
    disabled_at TEXT,
    -- The credential (`token_hash`) works until then.
    token_expires_at TEXT NOT NULL,
    -- 1 for the first authority credential: it works once, at login, which
    -- replaces it.
    bootstrap INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
-- Short-lived tokens a login hands out for a credential (`POST /v1/login`).
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
-- The catalog (数据目录, 二(三)): one entry per dataset, registered by its
-- provider and confirmed by the authority (`body_json` is the record), with
-- the dataset's privacy budget, which every version shares (rho_total = 0
-- until the first ingest sets it).
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    provider_org TEXT NOT NULL REFERENCES orgs(id),
    status TEXT NOT NULL,
    body_json TEXT NOT NULL,
    rho_total REAL NOT NULL DEFAULT 0,
    rho_spent REAL NOT NULL DEFAULT 0,
    delta_total REAL NOT NULL DEFAULT 0,
    delta_spent REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Every ingest of a cataloged dataset (`body_json` is the version record).
CREATE TABLE IF NOT EXISTS dataset_versions (
    dataset TEXT NOT NULL REFERENCES datasets(name),
    seq INTEGER NOT NULL,
    version TEXT NOT NULL,
    file TEXT NOT NULL,
    status TEXT NOT NULL,
    unit_count INTEGER NOT NULL,
    body_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (dataset, seq)
);
-- The same content is one version (a withdrawn one may come again), and a
-- dataset has at most one version awaiting approval.
CREATE UNIQUE INDEX IF NOT EXISTS dataset_versions_content ON dataset_versions (dataset, version) WHERE status != 'withdrawn';
CREATE UNIQUE INDEX IF NOT EXISTS dataset_versions_pending ON dataset_versions (dataset) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS scenarios (
    id TEXT PRIMARY KEY,
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    created_by TEXT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    purpose TEXT NOT NULL,
    datasets_json TEXT NOT NULL,
    modes_json TEXT NOT NULL,
    status TEXT NOT NULL,
    valid_days INTEGER NOT NULL,
    valid_until TEXT NOT NULL,
    rho_total REAL NOT NULL,
    rho_spent REAL NOT NULL DEFAULT 0,
    delta_total REAL NOT NULL,
    delta_spent REAL NOT NULL DEFAULT 0,
    -- The agency's structured review report (JSON), once made.
    review_json TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS modules (
    id TEXT PRIMARY KEY,
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    uploaded_by TEXT NOT NULL REFERENCES users(id),
    scenario TEXT NOT NULL REFERENCES scenarios(id),
    manifest_json TEXT NOT NULL,
    signature TEXT NOT NULL,
    wasm BLOB NOT NULL,
    -- Set when the operator exits: `wasm` is emptied then.
    deleted_at TEXT,
    created_at TEXT NOT NULL
);
-- Every compilation a submission caused, accepted or refused: the CPU
-- milliseconds the compile worker used, charged to the organisation's
-- daily compile quota.
CREATE TABLE IF NOT EXISTS compile_charges (
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    cpu_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
-- Modules the sandbox refused, by organisation and the SM3 of their bytes:
-- a re-send is refused at once, without compiling again (per organisation,
-- so one cannot learn what another sent).
CREATE TABLE IF NOT EXISTS refused_modules (
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    wasm_sm3 TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (operator_org, wasm_sm3)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL REFERENCES scenarios(id),
    module TEXT NOT NULL REFERENCES modules(id),
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    submitted_by TEXT NOT NULL REFERENCES users(id),
    rho REAL NOT NULL,
    delta REAL NOT NULL,
    budget_json TEXT NOT NULL,
    -- SM3 of (module, budget, inputs): identical requests replay the stored answer.
    replay_key TEXT NOT NULL,
    status TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    sealed_output BLOB,
    -- The outbound check's verdict (pass / review / block) once checked.
    verdict TEXT,
    -- Set when policy approved the job without reviewers: the earlier job
    -- (same module, budget and inputs, two reviewers' approval) it matched.
    auto_approved_as TEXT,
    -- The release schedule's period (public: from the module's declared
    -- limits and the input's row count): decisions become visible to the
    -- operator at created_at + k × period, k ≥ 1.
    period_ms INTEGER NOT NULL,
    -- The longest its run can take (public, the same quantities): the
    -- booked work later jobs may queue behind.
    run_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_replay ON jobs (replay_key);
CREATE INDEX IF NOT EXISTS jobs_scenario ON jobs (scenario);
CREATE TABLE IF NOT EXISTS votes (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    reviewer TEXT NOT NULL REFERENCES users(id),
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    public_comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL,
    PRIMARY KEY (job_id, reviewer)
);
-- The authority's sign-off of outputs derived from 重要 data.
CREATE TABLE IF NOT EXISTS signoffs (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    authority TEXT NOT NULL REFERENCES users(id),
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    public_comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
-- The units behind every published cell of a released non-DP output
-- (SM4-GCM sealed, AAD = job id), for the differencing guard.
CREATE TABLE IF NOT EXISTS released_cells (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    dataset TEXT NOT NULL,
    version TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS released_cells_data ON released_cells (dataset, version);
CREATE TABLE IF NOT EXISTS releases (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    receipt_json TEXT NOT NULL,
    signature TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
-- SM2-signed (entries, head hash) statements by the platform key, written at
-- every filing and every CHECKPOINT_EVERY entries: what catches truncation
-- and re-chaining, which the hash chain alone cannot.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    entries INTEGER PRIMARY KEY,
    head_hash TEXT NOT NULL,
    at TEXT NOT NULL,
    signature TEXT NOT NULL
);
-- Append-only in the database itself: no UPDATE or DELETE of either table.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

-- The operator life cycle (二(六)): admission procedures, agreements and
-- exits. Each record is its JSON form; `status` and `until` are columns so
-- that updates are conditional on them.
CREATE TABLE IF NOT EXISTS admissions (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    body_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agreements (
    id TEXT PRIMARY KEY,
    operator_org TEXT NOT NULL REFERENCES orgs(id),
    admission TEXT NOT NULL UNIQUE REFERENCES admissions(id),
    status TEXT NOT NULL,
    until TEXT NOT NULL,
    body_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One agreement that has not ended per operator at a time.
CREATE UNIQUE INDEX IF NOT EXISTS agreements_live ON agreements (operator_org) WHERE status != 'ended';
CREATE TABLE IF NOT EXISTS exits (
    org TEXT PRIMARY KEY REFERENCES orgs(id),
    record_json TEXT NOT NULL,
    record_sm3 TEXT NOT NULL,
    at TEXT NOT NULL
);

-- Procedures kept as one JSON record each, updated by compare-and-swap on
-- the record: catalog update requests (`catalog_request`), objections to
-- catalog entries (`objection`), association-risk incidents (`incident`)
-- and supervision samples (`supervision`).
CREATE TABLE IF NOT EXISTS procedures (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    body_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS procedures_kind ON procedures (kind, created_at);
-- The consent registry (二(一)): every grant and revocation, by dataset and
-- subject (the keyed pseudonym its unit column holds); the latest decides.
CREATE TABLE IF NOT EXISTS consents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL REFERENCES datasets(name),
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    granted INTEGER NOT NULL,
    basis TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (dataset, subject, seq);
-- The lists (`pages.rs`): newest first by (created_at, key).
CREATE INDEX IF NOT EXISTS orgs_page ON orgs (created_at, id);
CREATE INDEX IF NOT EXISTS users_page ON users (created_at, id);
CREATE INDEX IF NOT EXISTS scenarios_page ON scenarios (operator_org, created_at, id);
CREATE INDEX IF NOT EXISTS modules_page ON modules (operator_org, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_page ON jobs (operator_org, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_status_page ON jobs (status, created_at, id);
CREATE INDEX IF NOT EXISTS procedures_page ON procedures (kind, created_at, id);
CREATE INDEX IF NOT EXISTS audit_filings ON audit (at, seq) WHERE action LIKE 'filing.%';
-- Idempotency keys (`idempotency.rs`): a user's key, the request it was
-- first sent with (SM3 of method, path and body) and, once that request
-- succeeded, its answer (the body sealed with the platform's SM4 key).
CREATE TABLE IF NOT EXISTS idempotency (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    location TEXT,
    body_sealed BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (created_at);
