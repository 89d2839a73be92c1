// zpkd: the pool host daemon (not yet implemented).
print("zpkd: not yet implemented")
