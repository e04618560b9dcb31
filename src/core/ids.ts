import { randomInt } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const ID_LENGTH = 17;

/** 17 characters of [A-Za-z0-9] from a cryptographic source (~101 bits), like Apify's cryptoRandomObjectId. */
export function newId(length = ID_LENGTH): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** Ids we accept in paths: what we issue plus Apify-style ids of other lengths, never anything that needs escaping. */
export const ID_PATTERN = '^[A-Za-z0-9]{1,64}$';
const ID = new RegExp(ID_PATTERN);

export function isValidId(id: string): boolean {
  return ID.test(id);
}
