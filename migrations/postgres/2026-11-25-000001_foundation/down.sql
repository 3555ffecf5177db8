DROP TABLE outbox_attempts;
DROP TABLE outbox;
DROP TABLE account_tokens;
DROP TABLE sessions;
DROP TABLE accounts;
