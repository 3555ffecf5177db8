-- Only subscribers linked to an account are looked up by it, and most
-- sign-ups are anonymous: without their NULLs the index is one b-tree less
-- for such a sign-up to write.
DROP INDEX newsletter_subscribers_account_id;
CREATE INDEX newsletter_subscribers_account_id ON newsletter_subscribers (account_id)
    WHERE account_id IS NOT NULL;
