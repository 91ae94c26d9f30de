/** Tests of `multios-patch agent` option parsing and of the CLI's usage errors (exit 2). */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AgentUsageError, parseAgentOptions } from '../../src/agent/options.js'
import { runAgentCommand } from '../../src/cli/agent.js'

const base = ['--controller', 'http://ctl.example:5487']

function usageError (argv: string[], hostname = 'node-1'): string {
  try {
    parseAgentOptions(argv, hostname)
  } catch (err) {
    expect(err).toBeInstanceOf(AgentUsageError)
    return (err as Error).message
  }
  throw new Error(`accepted ${JSON.stringify(argv)}`)
}

describe('parseAgentOptions', () => {
  it('fills every default from the brief', () => {
    expect(parseAgentOptions(base, 'controller-0')).toEqual({
      controller: 'http://ctl.example:5487',
      hostname: 'controller-0',
      sysroot: '/',
      stateDir: '/var/lib/multios-patch-agent',
      driver: null,
      nodetype: 'controller',
      subfunctions: ['controller'],
      lockFile: '/var/run/.node_locked',
      bootIdFile: '/proc/sys/kernel/random/boot_id',
      bootedCommitFile: null,
      intervalS: 30,
      once: false,
      swVersion: '22.12',
      logLevel: 'info',
      tokenFile: '/var/lib/multios-patch-agent/token',
      enrollSecretFile: null,
      caFile: null
    })
  })

  it('takes every option, resolves folders and defaults subfunctions to the nodetype', () => {
    const o = parseAgentOptions([
      '--controller', 'https://ctl:8443/prefix/', '--hostname', 'compute-1', '--sysroot', '/srv/root/', '--state-dir', 'rel/state',
      '--driver', 'ostree', '--nodetype', 'worker', '--lock-file', '/run//.locked', '--boot-id-file', 'rel/boot_id', '--booted-commit-file', 'rel/booted', '--interval', '0.5', '--once',
      '--sw-version', '23.09', '--log-level', 'silent', '--token-file', 'rel/tok', '--enroll-secret-file', '/etc/mpatch/secret',
      '--ca', 'rel/ca.pem'
    ], 'ignored')

    expect(o).toEqual({
      controller: 'https://ctl:8443/prefix',
      hostname: 'compute-1',
      sysroot: '/srv/root',
      stateDir: path.resolve('rel/state'),
      driver: 'ostree',
      nodetype: 'worker',
      subfunctions: ['worker'],
      lockFile: '/run/.locked',
      bootIdFile: path.resolve('rel/boot_id'),
      bootedCommitFile: path.resolve('rel/booted'),
      intervalS: 0.5,
      once: true,
      swVersion: '23.09',
      logLevel: 'silent',
      tokenFile: path.resolve('rel/tok'),
      enrollSecretFile: '/etc/mpatch/secret',
      caFile: path.resolve('rel/ca.pem')
    })
  })

  it('puts the token file in the state folder unless --token-file says otherwise', () => {
    expect(parseAgentOptions([...base, '--state-dir', '/srv/agent']).tokenFile).toBe('/srv/agent/token')
  })

  it('splits and deduplicates --subfunctions', () => {
    expect(parseAgentOptions([...base, '--subfunctions', 'controller,worker,lowlatency,worker']).subfunctions)
      .toEqual(['controller', 'worker', 'lowlatency'])
  })

  it.each([
    [[], '--controller is required'],
    [['--controller', 'not a url'], 'invalid --controller'],
    [['--controller', 'ftp://ctl/'], 'only http and https'],
    [['--controller', 'http://u:p@ctl/'], 'credentials'],
    [['--controller', 'http://ctl/?x=1'], 'no query or fragment'],
    [[...base, '--hostname=-rf'], 'invalid --hostname'],
    [[...base, '--hostname', '-rf'], "Option '--hostname' argument is ambiguous"],
    [[...base, '--hostname', 'a_b'], 'invalid --hostname'],
    [[...base, '--hostname', 'x'.repeat(64)], 'invalid --hostname'],
    [[...base, '--driver', 'apk'], 'invalid --driver'],
    [[...base, '--nodetype', 'compute'], 'invalid --nodetype'],
    [[...base, '--subfunctions', 'worker,,lowlatency'], 'invalid --subfunctions'],
    [[...base, '--subfunctions', 'Worker'], 'invalid --subfunctions'],
    [[...base, '--lock-file', 'var/run/.node_locked'], 'invalid --lock-file'],
    [[...base, '--lock-file', '/'], 'invalid --lock-file'],
    [[...base, '--boot-id-file', ''], 'invalid --boot-id-file'],
    [[...base, '--boot-id-file', '/'], 'invalid --boot-id-file'],
    [[...base, '--boot-id-file', '/tmp/a\nb'], 'invalid --boot-id-file'],
    [[...base, '--interval', '0'], 'invalid --interval'],
    [[...base, '--interval=-5'], 'invalid --interval'],
    [[...base, '--interval', ''], 'invalid --interval'],
    [[...base, '--interval', '1e3'], 'invalid --interval'],
    [[...base, '--interval', '3601'], 'invalid --interval'],
    [[...base, '--sw-version', '../22'], 'invalid --sw-version'],
    [[...base, '--log-level', 'loud'], 'invalid --log-level'],
    [[...base, '--state-dir', '/'], '--state-dir must not be /'],
    [[...base, '--sysroot', ''], 'invalid --sysroot'],
    [[...base, '--bogus'], "Unknown option '--bogus'"],
    [[...base, 'extra'], 'extra'],
    [[...base, '--interval'], "'--interval <value>' argument missing"],
    [[...base, '--token-file', ''], 'invalid --token-file'],
    [[...base, '--token-file', '/'], 'invalid --token-file'],
    [[...base, '--enroll-secret-file', '/tmp/a\nb'], 'invalid --enroll-secret-file'],
    [[...base, '--enroll-secret', 's3cret'], "Unknown option '--enroll-secret'"],
    [[...base, '--ca', '/etc/ca.pem'], '--ca needs an https --controller URL'],
    [['--controller', 'https://ctl:5491', '--ca', ''], 'invalid --ca']
  ])('refuses %j with a clear message', (argv, message) => {
    expect(usageError(argv)).toContain(message)
  })

  it('refuses a machine hostname the controller would not accept, naming --hostname as the way out', () => {
    expect(usageError(base, 'my_host')).toMatch(/invalid hostname of this machine "my_host".*pass --hostname/)
  })
})

describe('runAgentCommand usage errors', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'mpatch-agent-opt-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  function capture (): { io: { stdout: { write: (s: string) => void }, stderr: { write: (s: string) => void } }, out: () => string, err: () => string } {
    let out = ''
    let err = ''
    return { io: { stdout: { write: (s) => { out += s } }, stderr: { write: (s) => { err += s } } }, out: () => out, err: () => err }
  }

  it('exits 2 with the message and the usage for a bad option, creating nothing', async () => {
    const c = capture()
    const stateDir = path.join(dir, 'state-bad')

    const code = await runAgentCommand([...base, '--interval', '0', '--state-dir', stateDir], c.io)

    expect(code).toBe(2)
    expect(c.err()).toContain('multios-patch agent: invalid --interval "0"')
    expect(c.err()).toContain('Usage:')
    await expect(stat(stateDir)).rejects.toThrow(/ENOENT/)
  })

  it('exits 2 when the sysroot is not a folder or the state dir is a file', async () => {
    const file = path.join(dir, 'plain-file')
    await writeFile(file, 'x')
    const a = capture()
    const b = capture()

    expect(await runAgentCommand([...base, '--hostname', 'h', '--sysroot', path.join(dir, 'missing')], a.io)).toBe(2)
    expect(await runAgentCommand([...base, '--hostname', 'h', '--sysroot', dir, '--state-dir', file], b.io)).toBe(2)

    expect(a.err()).toContain(`--sysroot ${path.join(dir, 'missing')} is not a folder`)
    expect(b.err()).toContain(`--state-dir ${file} exists and is not a folder`)
  })

  it('exits 2 with one line naming --ca when the CA file is missing, unreadable or holds no certificate', async () => {
    const https = ['--controller', 'https://127.0.0.1:5491', '--hostname', 'h', '--sysroot', dir, '--state-dir', path.join(dir, 'state-ca')]
    const notPem = path.join(dir, 'not-a-cert.pem')
    await writeFile(notPem, 'hello\n')
    const badPem = path.join(dir, 'bad-cert.pem')
    await writeFile(badPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    const runs = []

    for (const ca of [path.join(dir, 'missing.pem'), dir, notPem, badPem]) {
      const c = capture()
      runs.push({ code: await runAgentCommand([...https, '--ca', ca], c.io), first: c.err().split('\n')[0] })
    }

    expect(runs).toEqual([
      { code: 2, first: `multios-patch agent: --ca ${path.join(dir, 'missing.pem')}: ENOENT` },
      { code: 2, first: `multios-patch agent: --ca ${dir}: EISDIR` },
      { code: 2, first: `multios-patch agent: --ca ${notPem}: no PEM certificate in it` },
      { code: 2, first: expect.stringMatching(new RegExp(`^multios-patch agent: --ca ${badPem}: not a valid certificate`)) }
    ])
    await expect(stat(path.join(dir, 'state-ca'))).rejects.toThrow(/ENOENT/)
  })

  it('exits 2 when --enroll-secret-file names no file', async () => {
    const c = capture()

    const code = await runAgentCommand([...base, '--hostname', 'h', '--sysroot', dir, '--state-dir', path.join(dir, 'state-sec'), '--enroll-secret-file', path.join(dir, 'nope')], c.io)

    expect(code).toBe(2)
    expect(c.err().split('\n')[0]).toBe(`multios-patch agent: --enroll-secret-file ${path.join(dir, 'nope')} is not a file`)
  })

  it('prints the usage for --help and exits 0', async () => {
    const c = capture()

    expect(await runAgentCommand(['--help'], c.io)).toBe(0)

    expect(c.out()).toContain('--controller URL')
    expect(c.out()).toContain('--once')
    expect(c.out()).toMatch(/--token-file PATH .*default <state-dir>\/token\n/)
    expect(c.out()).toContain('--enroll-secret-file PATH')
    expect(c.out()).toMatch(/--ca FILE .*besides the system store/)
    expect(c.out()).toMatch(/--boot-id-file PATH .*boot id, read for every report.*\n.*default \/proc\/sys\/kernel\/random\/boot_id\n/)
    expect(c.err()).toBe('')
  })
})
