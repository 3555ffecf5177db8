-- The newsletter's sections used to come from the configuration, whose
-- default list is the one below; a sign-up that kept every box ticked (or
-- left the choice out) stored exactly that text. The `sections` table is now
-- the one source for articles and the newsletter alike. Those readers took
-- the newsletter as a whole, so they get every section the site has now,
-- and, by the rule applied whenever a section is added, every later one
-- (on a site with no section yet, `[]`, which every new section joins).
-- Slugs are [a-z0-9-], so they need no escaping inside the JSON text.
UPDATE newsletter_subscribers
SET sections = (
    SELECT '[' || COALESCE(group_concat('"' || slug || '"', ',' ORDER BY position, name), '') || ']'
    FROM sections
)
WHERE sections = '["patents","trademarks","copyright","designs","litigation"]';
