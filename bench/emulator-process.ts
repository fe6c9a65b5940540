import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { GoogleEndpoints, GraphEndpoints } from '../test/emulators/environment.js';
import type { EmulatorsReady, EventsLoaded } from './emulator-protocol.js';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./emulator-child.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const LOAD_TIMEOUT_MS = 5 * 60_000;
/** How long a stopping child may take before it is killed. */
const STOP_GRACE_MS = 5_000;

export type Loaded = Extract<EventsLoaded, { ok: true }>;

/** The Google and Graph emulators running in a child process (bench/emulator-child.ts). */
export type EmulatorProcess = {
  google: GoogleEndpoints;
  graph: GraphEndpoints;
  /** Loads the first-sync events for the day starting at `today` (UTC midnight, ms) into both. */
  load(today: number): Promise<Loaded>;
  /** Ends the child (SIGTERM, then SIGKILL after a grace period); safe to call more than once. */
  stop(): Promise<void>;
};

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** A message from the child, or the child's end, or the timeout, whichever comes first. */
function nextMessage<T>(
  child: ChildProcess,
  accept: (message: unknown) => message is T,
  ms: number,
  what: string,
) {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`the emulator process did not ${what} within ${ms} ms`)),
      ms,
    );
    const onMessage = (message: unknown) => {
      if (accept(message)) finish(null, message);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(
        new Error(`the emulator process exited (code ${code}, signal ${signal}) before it would ${what}`),
      );
    const finish = (error: Error | null, message?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message!);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * Starts the emulators in a child process. If this process ends without stopping it, the child sees
 * its IPC channel close and stops on its own; a process exit kills it outright too.
 */
export async function startEmulatorProcess(): Promise<EmulatorProcess> {
  // tsx's loader is registered per process, so the child gets it through --import.
  const child = fork(CHILD, [], {
    cwd: PROJECT_ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const killOnExit = () => {
    if (running(child)) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (running(child)) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
    })());
  try {
    const ready = await nextMessage(
      child,
      (message): message is EmulatorsReady => (message as EmulatorsReady | undefined)?.kind === 'ready',
      START_TIMEOUT_MS,
      'start',
    );
    let nextId = 1;
    return {
      google: ready.google,
      graph: ready.graph,
      async load(today) {
        const id = nextId++;
        const reply = nextMessage(
          child,
          (message): message is EventsLoaded =>
            (message as EventsLoaded | undefined)?.kind === 'loaded' && (message as EventsLoaded).id === id,
          LOAD_TIMEOUT_MS,
          'load the events',
        );
        child.send({ kind: 'load', id, today });
        const loaded = await reply;
        if (!loaded.ok) throw new Error(`the emulator process could not load the events: ${loaded.error}`);
        return loaded;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
