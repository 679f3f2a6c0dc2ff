"""Everything that touches the world: PostgreSQL, email, screening rules, hand-offs."""
