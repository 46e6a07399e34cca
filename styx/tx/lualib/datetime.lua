local S = ... return {}
