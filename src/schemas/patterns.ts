/** Patterns shared by the API schemas, the agent and the tokens file (plain strings: no schema library needed to use them). */

/** Host names as agents report them and tokens bind them. */
export const HOSTNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$'
