export declare const packageRoot: string;
export declare function findSessiondBin(): string;
export interface SessiondProcess {
  url: string;
  adminKey: string;
  dataDir: string;
  pid: number | undefined;
  log(): string;
  stop(): Promise<void>;
}
export declare function startSessiond(opts?: {
  env?: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<SessiondProcess>;
export declare function freePort(): Promise<number>;
export interface RedisProcess {
  url: string;
  port: number;
  kill(): Promise<void>;
}
export declare function startRedis(): Promise<RedisProcess>;
