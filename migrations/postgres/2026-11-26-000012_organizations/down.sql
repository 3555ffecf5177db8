DROP TABLE organization_join_tokens;
DROP TABLE organization_managers;
DROP TABLE organization_members;
DROP TABLE organization_domains;
DROP TABLE organizations;
