/**
 * The tiny guest of the emulation tests: a Debian cloud kernel and busybox initramfs images,
 * built by scripts/tiny-guest.js (which `npm run guest` uses too) and cached per kernel version.
 */
import { requireVmTools, tinyGuest, type TinyGuest } from '../../scripts/tiny-guest.js';

export type TinyVm = TinyGuest;
export { requireVmTools };
export const tinyVm = tinyGuest;
