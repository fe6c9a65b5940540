export { MAX_BOOKING_DAYS } from './checks.js';
export {
  type BookingInput,
  type BookingPatch,
  cancelBooking,
  createBooking,
  decideBooking,
  updateBooking,
} from './commands.js';
export { type BookingListQuery, getBooking, listBookings } from './queries.js';
export { type BookingStatus, type BookingView, bookingView } from './view.js';
export {
  cancelBookingSeries,
  createBookingSeries,
  getBookingSeries,
  type RecurrenceInput,
  type SeriesView,
} from './series.js';
