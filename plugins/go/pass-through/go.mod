module pass-through

go 1.25
