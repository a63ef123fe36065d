-- Roles beyond the implicit `user` that every account has.
CREATE TABLE authz.role_assignments (
    user_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('admin')),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
