/** Environment variables as the process has them. */
export type Env = Record<string, string | undefined>;
