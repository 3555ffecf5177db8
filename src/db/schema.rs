//! The tables, identical on both backends (see migrations/{sqlite,postgres}).
//! Ids are TEXT (UUIDs), times are TIMESTAMP in UTC.

diesel::table! {
    accounts (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        company -> Nullable<Text>,
        job_title -> Nullable<Text>,
        password_hash -> Text,
        role -> Text,
        email_verified_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    account_tokens (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        purpose -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        dedupe_key -> Text,
        template -> Text,
        from_address -> Text,
        to_address -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    outbox_attempts (id) {
        id -> Text,
        outbox_id -> Text,
        attempted_at -> Timestamp,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(account_tokens -> accounts (account_id));
diesel::joinable!(outbox_attempts -> outbox (outbox_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    sessions,
    account_tokens,
    outbox,
    outbox_attempts,
);
