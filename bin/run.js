#!/usr/bin/env node
// `node bin/run.js …` runs the `spin` command, as `spin …` does (bin/run.cjs).
import './run.cjs';
