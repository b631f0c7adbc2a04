/** The tiny guest's files (see tiny-guest.js). */
export interface TinyGuest {
  kernel: string;
  graceful: string;
  stubborn: string;
  marker: string;
  append: string;
}

export function requireVmTools(): Promise<void>;
export function tinyGuest(): Promise<TinyGuest>;
