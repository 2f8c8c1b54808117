// Types for switchboard-client (the package is plain JavaScript).

export type State = "connecting" | "open" | "closed";

export interface Position {
  offset: number;
  epoch: string;
}

export interface ClientOptions {
  /** A token for the connection (`?token=`). */
  token?: string;
  /** Called for every (re)connect and before the token expires. */
  getToken?: () => string | Promise<string>;
  /** A WebSocket constructor (defaults to the global one). */
  WebSocket?: unknown;
  /** Reconnect backoff in ms (full jitter, doubling from `min` up to `max`). */
  backoff?: { min?: number; max?: number };
  /** How long a request waits for its reply, in ms (default 10000). */
  requestTimeout?: number;
}

export interface SubscribeOptions {
  /** Field equalities (or a list of them) every delivered payload matches. */
  filter?: Record<string, unknown> | Record<string, unknown>[];
  /** Resume point: `{ offset, epoch }` for a channel, a `seq` for a resource. */
  since?: Position | number;
  /** Resources only: which changes (`insert`, `update`, `delete`). */
  events?: string[];
}

export interface Frame {
  type: string;
  [key: string]: unknown;
}

export interface Subscription {
  /** Whether the last (re)subscribe recovered everything missed (when asked). */
  recovered?: boolean;
  /** A channel's last delivered position. */
  position: Position | null;
  /** A resource's last delivered seq. */
  seq: number | null;
  unsubscribe(): Promise<void>;
}

export interface Member {
  memberId: string;
  clientId?: string;
  userId?: string | null;
  info: unknown;
  joinedAt: number;
}

export declare class SwitchboardError extends Error {
  code: string;
  detail: string;
}

export interface Client {
  /** Resolves with the `connected` frame once connected (and resubscribed). */
  readonly ready: Promise<Frame>;
  readonly state: State;
  readonly clientId?: string;
  subscribe(channel: string, handler: (data: unknown, frame: Frame) => void, options?: SubscribeOptions): Promise<Subscription>;
  subscribe(target: { resource: string }, handler: (event: Frame, frame: Frame) => void, options?: SubscribeOptions): Promise<Subscription>;
  publish(channel: string, message: unknown): Promise<{ delivered: number; offset?: number; epoch?: string }>;
  send(target: { users?: string[]; clients?: string[]; channels?: string[]; data: unknown }): Promise<{ delivered: number }>;
  call(walker: string, context?: Record<string, unknown>): Promise<Frame>;
  join(channel: string, info?: unknown): Promise<void>;
  leave(channel: string): Promise<boolean>;
  presence(channel: string): Promise<Member[]>;
  auth(token?: string): Promise<Frame>;
  on(event: "direct", handler: (data: unknown, frame: Frame) => void): () => void;
  on(event: "presence" | "notify", handler: (frame: Frame) => void): () => void;
  on(event: "state", handler: (state: State) => void): () => void;
  on(event: "error", handler: (error: Error) => void): () => void;
  close(): Promise<void>;
}

export declare function createClient(url: string, options?: ClientOptions): Client;
export declare const STATES: State[];
