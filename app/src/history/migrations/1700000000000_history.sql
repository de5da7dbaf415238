-- The history of finished jobs (docs/decisions/0027; the schema is described in
-- docs/architecture.md, "History"). Run by node-pg-migrate from `dtq archiver` with search_path
-- set to HISTORY_SCHEMA. Both tables are range-partitioned by day on their time column: the
-- archiver creates the day partitions a batch needs and drops those past HISTORY_RETENTION_DAYS.

-- Up Migration

-- One row per job: its latest end (a job retried from the DLQ after it was archived, ending
-- again later, replaces its row: the archiver deletes the older one in the same transaction).
CREATE TABLE jobs (
  queue           text        NOT NULL,
  job_id          text        NOT NULL,
  task_type       text        NOT NULL,
  state           text        NOT NULL, -- completed | failed | cancelled
  priority        text        NOT NULL,
  payload         jsonb,
  result          jsonb,
  error_class     text,                 -- the last failure's class (errorClass(): a code or a name)
  error           text,                 -- the last failure's message
  attempts        integer     NOT NULL, -- starts, including the last one
  max_retries     integer     NOT NULL,
  worker          text,                 -- the worker of the last attempt
  partition_key   text,
  created_at      timestamptz NOT NULL,
  queued_at       timestamptz,          -- when it last became ready
  started_at      timestamptz,          -- when its last attempt started
  finished_at     timestamptz NOT NULL,
  wait_ms         bigint,               -- started_at - queued_at (the last attempt's wait)
  run_ms          bigint,               -- finished_at - started_at (the last attempt's run)
  flow_id         text,
  schedule        text,
  trace           text,
  idempotency_key text,
  job             jsonb       NOT NULL, -- the rest of the record as the API serves it (all but payload and result)
  archived_at     timestamptz NOT NULL DEFAULT now(),
  -- Free text over the error and the payload (its first 64 KiB of JSON text).
  search          tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(error_class, '') || ' ' || coalesce(error, '') || ' ' ||
      left(coalesce(payload::text, ''), 65536))
  ) STORED,
  PRIMARY KEY (finished_at, queue, job_id)
) PARTITION BY RANGE (finished_at);

CREATE INDEX jobs_job ON jobs (queue, job_id);

-- Where each job's row is: its latest end archived (and the one before, while the archiver
-- replaces it). Not partitioned, so (queue, job_id) is unique here: the archiver upserts it
-- first, and its row lock serialises two archivers writing the same job. Rows past retention
-- are deleted with the partitions.
CREATE TABLE job_latest (
  queue       text        NOT NULL,
  job_id      text        NOT NULL,
  finished_at timestamptz NOT NULL,
  prev        timestamptz,
  PRIMARY KEY (queue, job_id)
);
CREATE INDEX job_latest_time ON job_latest (finished_at);
CREATE INDEX jobs_queue_time ON jobs (queue, finished_at);
CREATE INDEX jobs_type_time ON jobs (task_type, finished_at);
CREATE INDEX jobs_state_time ON jobs (state, finished_at);
CREATE INDEX jobs_worker_time ON jobs (worker, finished_at);
CREATE INDEX jobs_payload ON jobs USING gin (payload jsonb_path_ops);
CREATE INDEX jobs_result ON jobs USING gin (result jsonb_path_ops);
CREATE INDEX jobs_search ON jobs USING gin (search);

-- One row per attempt (a start that ended): the failed ones from the job's error history, and
-- its last one. An attempt's row never changes once written.
CREATE TABLE attempts (
  queue       text        NOT NULL,
  job_id      text        NOT NULL,
  attempt     integer     NOT NULL, -- 1 for the first start
  task_type   text        NOT NULL,
  worker      text,
  started_at  timestamptz,
  ended_at    timestamptz NOT NULL,
  outcome     text        NOT NULL, -- failed (it was retried or dead-lettered) | completed | cancelled
  error_class text,
  error       text,
  run_ms      bigint,
  search      tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', coalesce(error_class, '') || ' ' || left(coalesce(error, ''), 65536))
  ) STORED,
  PRIMARY KEY (ended_at, queue, job_id, attempt)
) PARTITION BY RANGE (ended_at);

CREATE INDEX attempts_job ON attempts (queue, job_id, attempt);
CREATE INDEX attempts_worker_time ON attempts (worker, ended_at);
CREATE INDEX attempts_class_time ON attempts (error_class, ended_at) WHERE error_class IS NOT NULL;
CREATE INDEX attempts_type_time ON attempts (task_type, ended_at);
CREATE INDEX attempts_search ON attempts USING gin (search);

-- Down Migration
DROP TABLE job_latest;
DROP TABLE attempts;
DROP TABLE jobs;
