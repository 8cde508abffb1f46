import type { Command } from 'commander';
import { UserError } from '../core/engine/errors.js';
import { readTrustedFile } from '../core/engine/trusted-files.js';

/**
 * Where the database URL comes from, for every command that connects: --url, else --url-file,
 * else $SHADOWCUT_URL. The last two keep a password out of `ps` and shell history. After this
 * hook the command's `url` option holds the URL, whichever way it came.
 */
export function addUrlOptions(command: Command, { required }: { required: boolean }): Command {
  return command
    .option(
      '--url <url>',
      "mysql://user:pass@host:port/db or postgres://user:pass@host:port/db; every local user sees it in ps: for a password use --url-file, SHADOWCUT_URL or the engine's own (PGPASSWORD, ~/.pgpass, MYSQL_PWD, ?defaults-file=)",
    )
    .option('--url-file <path>', "read the URL from this file: yours (or root's), chmod 600, in a directory only you can write")
    .hook('preAction', (_self, action) => {
      const url = required ? requiredUrl(action.opts(), process.env) : resolveUrl(action.opts(), process.env);
      if (url !== undefined) action.setOptionValue('url', url);
    });
}

/** `resolveUrl`, for a command that cannot go on without one. */
export function requiredUrl(opts: { url?: string; urlFile?: string }, env: NodeJS.ProcessEnv): string {
  const url = resolveUrl(opts, env);
  if (url === undefined) throw new UserError('no database URL: give --url, --url-file or set SHADOWCUT_URL');
  return url;
}

export function resolveUrl(opts: { url?: string; urlFile?: string }, env: NodeJS.ProcessEnv): string | undefined {
  if (opts.url !== undefined && opts.urlFile !== undefined) throw new UserError('give the database URL once: --url or --url-file, not both');
  if (opts.urlFile !== undefined) {
    const url = readTrustedFile(opts.urlFile, '--url-file', { secret: true }).trim();
    if (url === '') throw new UserError(`--url-file ${opts.urlFile} is empty`);
    return url;
  }
  return opts.url ?? (env.SHADOWCUT_URL || undefined);
}
