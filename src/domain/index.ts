export * from './intervals.js';
export * from './time-zones.js';
export * from './schedule.js';
export * from './availability.js';
export * from './freebusy.js';
