-- Group pulls asked of the service (POST /bulk-pulls; ehr/group_pulls.py) and each member's result.
CREATE TABLE group_pulls (
    id TEXT PRIMARY KEY,
    group_ref TEXT NOT NULL,
    since TEXT,
    state TEXT NOT NULL,
    method TEXT,
    members BIGINT NOT NULL DEFAULT 0,
    patients_read BIGINT NOT NULL DEFAULT 0,
    resources BIGINT NOT NULL DEFAULT 0,
    invalid BIGINT NOT NULL DEFAULT 0,
    incomplete BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX group_pulls_due ON group_pulls (state, lease_until);
CREATE TABLE group_pull_patients (
    pull_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    patient TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (pull_id, position)
);
