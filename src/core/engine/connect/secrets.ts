/** What stands in for a secret wherever a URL is shown or kept. */
export const HIDDEN = '***';

/** Query parameters that carry a secret, in any engine's spelling (password=, pass=, pwd=, sslpassword=, ...). */
const SECRET_PARAM = /pass|pwd|secret|token/i;

/**
 * The one function every URL goes through before it is printed (plans, dry runs, messages, reports,
 * JSON) or stored (history, checkpoints): the userinfo password and every secret-looking query
 * parameter become `***`. It reads the URL as the drivers do (WHATWG), so a password with a raw or
 * encoded `@` is found whole. A URL that does not parse (a raw `/` or `?` in the password) cannot
 * be split safely, so nothing after the scheme is shown.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0];
    return scheme ? `${scheme}//${HIDDEN}` : HIDDEN;
  }
  if (u.password) u.password = HIDDEN;
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(key)) u.searchParams.set(key, HIDDEN);
  }
  // URLSearchParams writes `*` as is and the userinfo keeps it: `***`, not `%2A%2A%2A`.
  return u.toString();
}

/** Every redactable URL found in free text (an error message that quotes one), redacted. */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b(?:postgres|postgresql|mysql|mariadb):\/\/\S+/gi, (found) => redactUrl(found));
}

/**
 * One command-line argument as ps may show it. An argument that is a URL (or `--option=` one) is
 * redacted whole: searched as free text, a raw space in its password (which the drivers accept)
 * would end the URL there and leave the rest of the password shown.
 */
export function redactArgument(arg: string): string {
  const whole = /^(--[\w-]+=)?((?:postgres|postgresql|mysql|mariadb):\/\/.*)$/is.exec(arg);
  return whole ? `${whole[1] ?? ''}${redactUrl(whole[2])}` : redactUrlsIn(arg);
}
