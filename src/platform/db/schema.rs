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
        stream -> Text,
        headers -> Text,
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

diesel::table! {
    sections (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        position -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    articles (id) {
        id -> Text,
        slug -> Text,
        title -> Text,
        standfirst -> Text,
        body_markdown -> Text,
        body_html -> Text,
        section_id -> Text,
        byline -> Text,
        author_id -> Nullable<Text>,
        status -> Text,
        published_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    article_tags (article_id, tag) {
        article_id -> Text,
        tag -> Text,
    }
}

diesel::table! {
    article_revisions (id) {
        id -> Text,
        article_id -> Text,
        editor_id -> Nullable<Text>,
        changed_at -> Timestamp,
        changed_fields -> Text,
        previous -> Text,
    }
}

diesel::table! {
    entitlements (id) {
        id -> Text,
        account_id -> Text,
        kind -> Text,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        source_id -> Nullable<Text>,
        granted_by -> Nullable<Text>,
        note -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    trial_requests (id) {
        id -> Text,
        account_id -> Text,
        company -> Text,
        job_title -> Text,
        reason -> Nullable<Text>,
        email_domain -> Text,
        client_ip -> Nullable<Text>,
        status -> Text,
        flags -> Text,
        requested_at -> Timestamp,
        decision_due_by -> Timestamp,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<Text>,
        decision_note -> Nullable<Text>,
        decision_id -> Nullable<Text>,
        entitlement_id -> Nullable<Text>,
    }
}

diesel::table! {
    trial_decisions (id) {
        id -> Text,
        trial_id -> Text,
        admin_id -> Nullable<Text>,
        action -> Text,
        note -> Nullable<Text>,
        decided_at -> Timestamp,
    }
}

diesel::table! {
    admin_summaries (summary_date) {
        summary_date -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    newsletter_subscribers (id) {
        id -> Text,
        email -> Text,
        account_id -> Nullable<Text>,
        status -> Text,
        sections -> Text,
        source -> Text,
        consent_text -> Text,
        paused_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        confirmation_sent_at -> Nullable<Timestamp>,
        confirmed_at -> Nullable<Timestamp>,
        unsubscribed_at -> Nullable<Timestamp>,
        name -> Nullable<Text>,
        origin -> Nullable<Text>,
    }
}

diesel::table! {
    newsletter_tokens (token_hash) {
        token_hash -> Text,
        subscriber_id -> Text,
        purpose -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    newsletter_soft_bounces (email_hash) {
        email_hash -> Text,
        days -> Integer,
        first_at -> Timestamp,
        last_at -> Timestamp,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    newsletter_suppressions (email_hash) {
        email_hash -> Text,
        email -> Nullable<Text>,
        reason -> Text,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
        keyed -> Bool,
    }
}

diesel::table! {
    newsletter_imports (id) {
        id -> Text,
        kind -> Text,
        file_sha256 -> Text,
        total_rows -> BigInt,
        last_row -> BigInt,
        new_count -> BigInt,
        updated_count -> BigInt,
        unchanged_count -> BigInt,
        invalid_count -> BigInt,
        suppressed_count -> BigInt,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    digest_runs (id) {
        id -> Text,
        run_date -> Text,
        since -> Timestamp,
        cutoff -> Timestamp,
        article_count -> Integer,
        created_at -> Timestamp,
        prepared_at -> Nullable<Timestamp>,
        settled_at -> Nullable<Timestamp>,
        sent_count -> BigInt,
        failed_count -> BigInt,
        skipped_count -> BigInt,
        last_result_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    digest_deliveries (run_id, subscriber_id) {
        run_id -> Text,
        subscriber_id -> Text,
        variant -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        leased_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(digest_deliveries -> digest_runs (run_id));
diesel::joinable!(digest_deliveries -> newsletter_subscribers (subscriber_id));
diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        action -> Text,
        subject_kind -> Text,
        subject_id -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    inquiries (id) {
        id -> Text,
        name -> Text,
        email -> Text,
        company -> Text,
        seats -> Integer,
        message -> Nullable<Text>,
        acknowledged -> Bool,
        received_at -> Timestamp,
        handled -> Bool,
        handled_at -> Nullable<Timestamp>,
        handled_by -> Nullable<Text>,
        note -> Nullable<Text>,
    }
}

diesel::joinable!(audit_log -> accounts (actor_id));
diesel::joinable!(newsletter_subscribers -> accounts (account_id));
diesel::joinable!(newsletter_tokens -> newsletter_subscribers (subscriber_id));
diesel::joinable!(trial_decisions -> trial_requests (trial_id));
diesel::joinable!(trial_requests -> accounts (account_id));
diesel::joinable!(articles -> sections (section_id));
diesel::joinable!(article_tags -> articles (article_id));
diesel::joinable!(article_revisions -> articles (article_id));
diesel::joinable!(account_tokens -> accounts (account_id));
diesel::joinable!(outbox_attempts -> outbox (outbox_id));

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        seat_count -> Integer,
        seats_used -> Integer,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        notes -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    organization_domains (domain) {
        domain -> Text,
        organization_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    organization_members (id) {
        id -> Text,
        organization_id -> Text,
        account_id -> Text,
        entitlement_id -> Nullable<Text>,
        joined_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    organization_managers (organization_id, account_id) {
        organization_id -> Text,
        account_id -> Text,
    }
}

diesel::table! {
    organization_join_tokens (token_hash) {
        token_hash -> Text,
        organization_id -> Text,
        email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(organization_domains -> organizations (organization_id));
diesel::joinable!(organization_members -> organizations (organization_id));
diesel::joinable!(organization_members -> accounts (account_id));
diesel::joinable!(organization_managers -> organizations (organization_id));
diesel::joinable!(organization_join_tokens -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    sessions,
    account_tokens,
    outbox,
    outbox_attempts,
    sections,
    articles,
    article_tags,
    article_revisions,
    entitlements,
    trial_requests,
    trial_decisions,
    admin_summaries,
    newsletter_subscribers,
    newsletter_tokens,
    newsletter_suppressions,
    newsletter_soft_bounces,
    newsletter_imports,
    digest_runs,
    digest_deliveries,
    audit_log,
    organizations,
    organization_domains,
    organization_members,
    organization_managers,
    organization_join_tokens,
);

diesel::table! {
    access_stamp (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    content_stamp (id) {
        id -> Integer,
        version -> BigInt,
    }
}
