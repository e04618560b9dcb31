import { SecretSet } from '../text/secret-masker.js';

/** Options of `buildlog run` and `buildlog mask` that choose what is masked. */
export interface MaskFlags {
  maskEnv?: string[];
  /** False with `--no-auto-mask`. */
  autoMask: boolean;
}

/** Variables whose names say they hold a secret (case-insensitively) are masked unless --no-auto-mask. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY/i;
/** Shorter values of such variables are not masked: `TOKEN_TTL=60` would hide every "60". */
const MIN_AUTO_LENGTH = 6;

/**
 * The secrets to mask for a command that runs with `env`: the variables named by `--mask-env` and by
 * BUILDLOG_MASK_ENV (both lists count), the values of variables with secret-sounding names, and
 * `alwaysMasked` (buildlog's own token, masked whatever the flags say).
 */
export function collectSecrets(
  flags: MaskFlags,
  env: NodeJS.ProcessEnv,
  alwaysMasked: (string | undefined)[],
  warn: (message: string) => void,
): SecretSet {
  const secrets = new SecretSet();
  const named = [...(flags.maskEnv ?? []), ...(env.BUILDLOG_MASK_ENV ?? '').split(',')].map((n) => n.trim()).filter(Boolean);
  for (const name of new Set(named)) {
    const value = env[name];
    if (value) secrets.add(value);
    else warn(`--mask-env ${name}: no such variable is set (or it is empty); nothing to mask for it`);
  }
  if (flags.autoMask) {
    for (const [name, value] of Object.entries(env)) {
      if (value && value.length >= MIN_AUTO_LENGTH && SECRET_NAME.test(name)) secrets.add(value);
    }
  }
  for (const value of alwaysMasked) if (value) secrets.add(value);
  return secrets;
}

/** The environment the wrapped command gets: without buildlog's own token unless `passToken`. */
export function commandEnv(env: NodeJS.ProcessEnv, passToken: boolean): NodeJS.ProcessEnv {
  if (passToken) return env;
  const { BUILDLOG_TOKEN: _token, ...rest } = env;
  return rest;
}
