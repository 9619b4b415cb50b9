"""The judge's own code for the training tests: the networks the handout prescribes, and loading a
student's trained weights into them. Trusted code on the judge's side only.

One module per problem (cnn, contrastive, cvae, gan), and :mod:`autograder.judge.weights` for what
they share (the WeightMismatch that names the layer, and matching trained tensors to the
prescribed layers). The training tests reach these modules through ``hw3.testing.judge_code``:
the grader ships this package with the judge's runtime (never into the student's worker, never in
the student bundle), so the grader scores the prescribed network holding the student's weights. A
student's checkout has no autograder/: there the tests measure the student's own trained model in
the worker instead, which gives the same numbers for honest code.

Nothing here imports or runs the student's file.
"""
