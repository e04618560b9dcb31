import { resolveClientConfig } from '../client/config.js';
import { SecretMasker } from '../text/secret-masker.js';
import { collectSecrets, type MaskFlags } from './secrets.js';

/**
 * `buildlog mask`: the masking of `buildlog run` as a filter from stdin to stdout, for pipelines that
 * deliver their logs some other way. Output goes out as it comes, but for a tail that may still
 * become a secret.
 */
export async function mask(flags: MaskFlags): Promise<void> {
  const warn = (message: string) => process.stderr.write(`buildlog: ${message}\n`);
  const { token } = resolveClientConfig({});
  const masker = new SecretMasker(collectSecrets(flags, process.env, [token], warn));
  for await (const chunk of process.stdin) {
    const out = masker.push(chunk as Buffer);
    if (out.length && !process.stdout.write(out)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  process.stdout.write(masker.end());
}
