/** Sandbox sysroots for the real-tool driver tests (one temp folder per test process), local repositories, and host-state snapshots. */
import { createHash } from 'node:crypto'
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLocalExecutor, createLocalRunner } from '../../src/drivers/runner.js'
import type { Target } from '../../src/drivers/types.js'

/** Every sandbox of this test process lives here; removeSandboxes() deletes it. */
export const SANDBOX_ROOT = path.join(os.tmpdir(), `mpatch-test-${process.pid}`)

/** Prefix of SANDBOX_ROOT, used by the global teardown to find leftovers of dead processes. */
export const SANDBOX_PREFIX = 'mpatch-test-'

const run = createLocalRunner()

/** Runs a tool and throws with its stderr when it exits non-zero. */
export async function tool (file: string, args: string[], opts: { cwd?: string, env?: Record<string, string> } = {}): Promise<string> {
  const res = await run(file, args, opts)
  if (res.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${res.exitCode}: ${res.stderr.trim()}`)
  return res.stdout
}

/** A new empty folder under SANDBOX_ROOT. */
export async function makeSandbox (label: string): Promise<string> {
  await mkdir(SANDBOX_ROOT, { recursive: true })
  return await mkdtemp(path.join(SANDBOX_ROOT, `${label.replace(/[^A-Za-z0-9_-]/g, '_')}-`))
}

/** Deletes every sandbox of this process; call it in afterAll. */
export async function removeSandboxes (): Promise<void> {
  await rm(SANDBOX_ROOT, { recursive: true, force: true })
}

export interface SysrootOptions {
  /** os-release fields; written to etc/os-release unless null. */
  osRelease?: Record<string, string> | null
}

async function writeOsRelease (sysroot: string, fields: Record<string, string> | null): Promise<void> {
  if (fields === null) return
  const text = Object.entries(fields).map(([k, v]) => `${k}="${v}"`).join('\n') + '\n'
  await mkdir(path.join(sysroot, 'etc'), { recursive: true })
  await writeFile(path.join(sysroot, 'etc/os-release'), text)
}

/** A Debian sysroot: empty dpkg admin dir (status, info/, updates/), var/log for --log, etc/os-release. */
export async function makeDebSysroot (sysroot: string, opts: SysrootOptions = {}): Promise<string> {
  for (const dir of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log', 'var/lib/apt']) {
    await mkdir(path.join(sysroot, dir), { recursive: true })
  }
  await writeFile(path.join(sysroot, 'var/lib/dpkg/status'), '')
  await writeOsRelease(sysroot, opts.osRelease === undefined
    ? { ID: 'debian', VERSION_ID: '12', PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)' }
    : opts.osRelease)
  return sysroot
}

/** An RPM sysroot: `rpm --initdb` with the database at <sysroot>/var/lib/rpm, etc/os-release. */
export async function makeRpmSysroot (sysroot: string, opts: SysrootOptions = {}): Promise<string> {
  await mkdir(sysroot, { recursive: true })
  await tool('rpm', ['--root', sysroot, '--dbpath', '/var/lib/rpm', '--initdb'])
  await writeOsRelease(sysroot, opts.osRelease === undefined
    ? { ID: 'rocky', ID_LIKE: 'rhel centos fedora', VERSION_ID: '9.4', PRETTY_NAME: 'Rocky Linux 9.4 (Blue Onyx)' }
    : opts.osRelease)
  return sysroot
}

/** A Clear Linux sysroot: usr/share/clear/bundles with one file per bundle, usr/lib/os-release. */
export async function makeSwupdSysroot (sysroot: string, opts: { bundles?: string[], version?: string } = {}): Promise<string> {
  await mkdir(path.join(sysroot, 'usr/share/clear/bundles'), { recursive: true })
  for (const b of opts.bundles ?? ['os-core']) await writeFile(path.join(sysroot, 'usr/share/clear/bundles', b), '')
  await mkdir(path.join(sysroot, 'usr/lib'), { recursive: true })
  await writeFile(path.join(sysroot, 'usr/lib/os-release'),
    `NAME="Clear Linux OS"\nID=clear-linux-os\nVERSION_ID=${opts.version ?? '30123'}\nPRETTY_NAME="Clear Linux OS"\n`)
  return sysroot
}

/** A target for a sandbox sysroot, run by the real local executor; the state folder sits next to the sysroot. */
export function sandboxTarget (sysroot: string, opts: { stateDir?: string, env?: Record<string, string> } = {}): Target {
  return {
    exec: createLocalExecutor(),
    sysroot,
    stateDir: opts.stateDir ?? `${sysroot}.state`,
    ...opts.env !== undefined ? { env: opts.env } : {},
    timeoutMs: 60_000
  }
}

/** A flat apt repository (Packages + Release by apt-ftparchive) holding copies of the given .debs; returns its file:// URL. */
export async function makeDebRepo (dir: string, debs: string[]): Promise<string> {
  await mkdir(dir, { recursive: true })
  for (const deb of debs) await copyFile(deb, path.join(dir, path.basename(deb)))
  await writeFile(path.join(dir, 'Packages'), await tool('apt-ftparchive', ['packages', '.'], { cwd: dir }))
  // Captured from stdout, so apt-ftparchive never hashes a half-written Release of its own.
  const release = await tool('apt-ftparchive', ['release', '.'], { cwd: dir })
  await writeFile(path.join(dir, 'Release'), release)
  return `file://${dir}`
}

/** A createrepo_c repository holding copies of the given .rpms; returns its file:// URL. */
export async function makeRpmRepo (dir: string, rpms: string[]): Promise<string> {
  await mkdir(dir, { recursive: true })
  for (const rpm of rpms) await copyFile(rpm, path.join(dir, path.basename(rpm)))
  await tool('createrepo_c', ['-q', dir])
  return `file://${dir}`
}

/** Host paths the package tools could write to by mistake (spec/drivers.md §5); none may change during the tests. */
export const HOST_STATE_PATHS = [
  '/var/lib/dpkg/status',
  '/var/log/dpkg.log',
  '/root/.rpmdb',
  '/var/lib/rpm',
  '/var/cache/dnf',
  '/var/lib/dnf',
  '/var/log/dnf.log',
  '/var/log/dnf.rpm.log',
  '/var/log/dnf.librepo.log',
  '/var/log/hawkey.log',
  '/var/log/apt/history.log',
  '/var/lib/apt/extended_states'
]

/**
 * A map path → fingerprint ('absent', 'dir', 'link:<target>' or the sha256 of a file), walking
 * folders recursively.
 */
export async function snapshotHostState (paths: string[] = HOST_STATE_PATHS): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const visit = async (p: string): Promise<void> => {
    let st
    try {
      st = await lstat(p)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        out[p] = 'absent'
        return
      }
      throw err
    }
    if (st.isSymbolicLink()) {
      out[p] = `link:${await readlink(p)}`
    } else if (st.isDirectory()) {
      out[p] = 'dir'
      for (const name of (await readdir(p)).sort()) await visit(path.join(p, name))
    } else {
      out[p] = createHash('sha256').update(await readFile(p)).digest('hex')
    }
  }
  for (const p of paths) await visit(p)
  return out
}

/** Human-readable differences between two snapshots; empty when equal. */
export function diffSnapshots (before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
  return keys.filter((k) => before[k] !== after[k])
    .map((k) => `${k}: ${before[k] ?? 'absent'} → ${after[k] ?? 'absent'}`)
}

/** Sysroots made by makeOstreeSysroot; releaseOstreeSandboxes() unlocks their deployments. */
const ostreeSysroots = new Set<string>()

/**
 * A tiny tree `ostree admin deploy` accepts: a kernel and initramfs in usr/lib/modules/<kver>,
 * usr/etc, usr/lib/os-release with ID and PRETTY_NAME (deploy refuses a tree without them,
 * spec/drivers.md §4.5), plus usr/share/lab/marker holding `marker` so each commit differs.
 */
export async function writeOstreeTree (dir: string, marker: string): Promise<string> {
  for (const d of ['usr/lib/modules/6.1.0-lab', 'usr/etc', 'usr/share/lab']) await mkdir(path.join(dir, d), { recursive: true })
  await writeFile(path.join(dir, 'usr/lib/modules/6.1.0-lab/vmlinuz'), 'lab kernel\n')
  await writeFile(path.join(dir, 'usr/lib/modules/6.1.0-lab/initramfs.img'), 'lab initramfs\n')
  await writeFile(path.join(dir, 'usr/lib/os-release'), 'ID=debian\nVERSION_ID=12\nPRETTY_NAME="StarlingX lab"\n')
  await writeFile(path.join(dir, 'usr/share/lab/marker'), `${marker}\n`)
  return dir
}

/** `ostree init` of a repository (archive mode: what an HTTP feed serves). */
export async function makeOstreeRepo (dir: string, mode: 'archive' | 'bare' = 'archive'): Promise<string> {
  await mkdir(dir, { recursive: true })
  await tool('ostree', [`--repo=${dir}`, 'init', `--mode=${mode}`])
  return dir
}

/** Commits `treeDir` on `ref` with metadata version `version`; returns the commit checksum. */
export async function ostreeCommit (repo: string, ref: string, treeDir: string, version: string): Promise<string> {
  const out = await tool('ostree', [`--repo=${repo}`, 'commit', `--branch=${ref}`, `--subject=lab ${version}`,
    `--add-metadata-string=version=${version}`, `--tree=dir=${treeDir}`])
  return out.trim()
}

/**
 * An ostree sysroot: `ostree admin init-fs`, `os-init <stateroot>` (default 'debian'), and, when
 * `base` is given, that commit pulled locally from `base.repo` and deployed as the only deployment.
 */
export async function makeOstreeSysroot (sysroot: string, opts: { stateroot?: string, base?: { repo: string, commit: string } } = {}): Promise<string> {
  const stateroot = opts.stateroot ?? 'debian'
  await mkdir(sysroot, { recursive: true })
  ostreeSysroots.add(sysroot)
  await tool('ostree', ['admin', 'init-fs', sysroot])
  await tool('ostree', ['admin', 'os-init', `--sysroot=${sysroot}`, stateroot])
  if (opts.base !== undefined) {
    await tool('ostree', [`--repo=${sysroot}/ostree/repo`, 'pull-local', opts.base.repo, opts.base.commit])
    await tool('ostree', ['admin', 'deploy', `--sysroot=${sysroot}`, `--os=${stateroot}`, opts.base.commit])
  }
  return sysroot
}

/**
 * Clears the immutable attribute ostree puts on deployment folders (`chattr +i`), so
 * removeSandboxes() can delete them; call it in afterAll before removeSandboxes.
 */
export async function releaseOstreeSandboxes (): Promise<void> {
  for (const sysroot of ostreeSysroots) {
    const base = path.join(sysroot, 'ostree/deploy')
    const folders: string[] = []
    for (const osname of await readdir(base).catch(() => [])) {
      for (const name of await readdir(path.join(base, osname, 'deploy')).catch(() => [])) {
        if (/^[0-9a-f]{64}\.[0-9]+$/.test(name)) folders.push(path.join(base, osname, 'deploy', name))
      }
    }
    if (folders.length > 0) await tool('chattr', ['-i', ...folders])
  }
  ostreeSysroots.clear()
}
