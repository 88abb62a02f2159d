/** postbox/testing: given/when/then specifications for deciders and projections, and waiting for groups to catch up. */
export {
  type DeciderOutcome,
  type DeciderSpecification,
  type DeciderThen,
  type DeciderWhen,
  deciderSpec,
  type ErrorExpectation,
} from './testing/decider-spec.js';
export { type GivenEvent, type ProjectionSpecification, type ProjectionThen, projectionSpec } from './testing/projection-spec.js';
export { type GroupTarget, type WaitOptions, waitUntilCaughtUp } from './testing/wait-until-caught-up.js';
