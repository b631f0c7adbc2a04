// htm bound to preact's h: the page's templates, without a build step.
import { h } from '/vendor/preact.mjs';
import htm from '/vendor/htm.mjs';

export const html = htm.bind(h);
